# Writes OUTPUT: a C++ file defining `std::string_view NAME()` (NAME may be qualified,
# e.g. collectord::http::openApiDocument) that returns the bytes of INPUT, so the binary needs
# no file at run time. HEADER, when set, is included first so the definition is checked against
# its declaration. With JSON set, INPUT must parse as JSON or the build fails.
# Run at build time by a custom command, like EmbedSql.cmake.
foreach(required INPUT OUTPUT NAME)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "EmbedText.cmake needs -D${required}=...")
  endif()
endforeach()

file(READ "${INPUT}" text)
if(JSON)
  string(JSON _ ERROR_VARIABLE json_error TYPE "${text}")
  if(json_error)
    message(FATAL_ERROR "${INPUT} is not valid JSON: ${json_error}")
  endif()
endif()

set(delimiter "collectord_text")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw string delimiter ')${delimiter}\"'")
endif()

string(REGEX MATCH "^(.*)::([^:]+)$" qualified "${NAME}")
if(qualified)
  set(namespace "${CMAKE_MATCH_1}")
  set(function "${CMAKE_MATCH_2}")
else()
  set(namespace "")
  set(function "${NAME}")
endif()

set(include "")
if(HEADER)
  set(include "#include \"${HEADER}\"\n")
endif()
set(open "")
set(close "")
if(namespace)
  set(open "namespace ${namespace} {\n\n")
  set(close "\n}  // namespace ${namespace}\n")
endif()

file(WRITE "${OUTPUT}.tmp"
"// Generated from ${INPUT} by cmake/EmbedText.cmake. Do not edit.\n${include}#include <string_view>\n\n${open}std::string_view ${function}() {\n  static constexpr std::string_view text = R\"${delimiter}(${text})${delimiter}\";\n  return text;\n}\n${close}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
