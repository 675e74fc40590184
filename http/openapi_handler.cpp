#include "service_routes.h"

namespace collectord::http {

void addOpenApiRoutes(Router& router, Access access) {
  router.add("GET", "/api/openapi.json", {access, false}, [](const Request&) {
    return Response{200, std::string(openApiDocument()), "application/json", {}};
  });
}

}  // namespace collectord::http
