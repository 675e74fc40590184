# Writes OUTPUT: a C++ file defining `collectord::NAME()`, the migrations found in DIR as
# {version, name, sql}, ordered by their NNN_ prefix. Run at build time by a custom command.
file(GLOB sql_files "${DIR}/*.sql")
list(SORT sql_files)
set(body "")
foreach(f IN LISTS sql_files)
  get_filename_component(fname "${f}" NAME_WE)
  string(REGEX MATCH "^([0-9]+)_" _ "${fname}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "migration ${f} does not start with NNN_")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  file(READ "${f}" sql)
  string(APPEND body "    {${version}, \"${fname}\", R\"collectord_sql(${sql})collectord_sql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp"
"// Generated from ${DIR} by cmake/EmbedSql.cmake. Do not edit.\n#include \"migration.h\"\n\nnamespace collectord {\n\nconst std::vector<Migration>& ${NAME}() {\n  static const std::vector<Migration> migrations = {\n${body}  };\n  return migrations;\n}\n\n}  // namespace collectord\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
