// GET /api/nodes: the nodes of a cluster (docs/cluster.md), each with its state and the jobs it
// runs, as the shared store knows them; any node answers for all of them.

#include <Poco/JSON/Array.h>

#include "json_views.h"
#include "service_routes.h"
#include "time_format.h"

namespace collectord::http {
namespace {

Response nodes(ApiContext& context) {
  ClusterStore* cluster = context.clusterStore();
  if (!cluster) {
    return errorResponse(404, "cluster mode is not enabled on this collectord ([cluster] enabled)");
  }
  context.store();  // 503 while job state is not being saved, as every read
  Poco::JSON::Array::Ptr items = new Poco::JSON::Array;
  for (const NodeRecord& n : cluster->nodes()) {
    Poco::JSON::Object::Ptr o = orderedObject();
    o->set("node_id", n.node_id);
    Poco::JSON::Array::Ptr tags = new Poco::JSON::Array;
    for (const std::string& tag : n.tags) tags->add(tag);
    o->set("tags", tags);
    o->set("state", n.state);
    o->set("started_at", formatTimestamp(n.started_at));
    o->set("heartbeat_at", formatTimestamp(n.heartbeat_at));
    o->set("running", static_cast<int>(n.running_jobs.size()));
    Poco::JSON::Array::Ptr running = new Poco::JSON::Array;
    for (const std::string& id : n.running_jobs) running->add(id);
    o->set("running_jobs", running);
    items->add(o);
  }
  return Response{200, listingJson("nodes", items, "count"), "application/json", {}};
}

}  // namespace

void addNodeRoutes(Router& router, ApiContext& context) {
  router.add("GET", "/api/nodes", {Access::kRead, false},
             [&context](const Request&) { return nodes(context); });
}

}  // namespace collectord::http
