// [node] and [cluster] of collectord.ini, and which nodes a collector may run on.

#include <Poco/StringTokenizer.h>
#include <unistd.h>

#include <algorithm>

#include "config_reader.h"

namespace collectord {

bool CollectorConfig::runsOn(const std::string& node_id,
                             const std::vector<std::string>& node_tags) const {
  if (nodes.empty()) return true;
  return std::any_of(nodes.begin(), nodes.end(), [&](const std::string& selector) {
    if (selector.rfind("tag:", 0) != 0) return selector == node_id;
    return std::find(node_tags.begin(), node_tags.end(), selector.substr(4)) != node_tags.end();
  });
}

namespace config_detail {

std::vector<std::string> splitList(const std::string& value) {
  const Poco::StringTokenizer items(
      value, ",", Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
  return {items.begin(), items.end()};
}

bool isValidNodeName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '.' || ch == '_' || ch == ':' || ch == '-';
  });
}

void readCluster(IniReader& r, Config& config) {
  ClusterSettings& c = config.cluster;
  c.enabled = r.getBool("cluster.enabled", false);
  if (const auto id = r.get("node.id")) {
    c.node_id = *id;
    if (!isValidNodeName(c.node_id)) {
      r.problem("node.id", "'" + c.node_id +
                               "' is not a node id (1 to 64 letters, digits, '.', '_', ':', '-')");
    }
  } else {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    c.node_id = std::string(host).substr(0, 58) + ":" + std::to_string(config.http_port);
  }
  if (const auto tags = r.get("node.tags")) {
    for (const std::string& tag : splitList(*tags)) {
      if (!isValidNodeName(tag)) {
        r.problem("node.tags",
                  "'" + tag + "' is not a tag (1 to 64 letters, digits, '.', '_', ':', '-')");
      }
      c.tags.push_back(tag);
    }
  }
  c.lease_timeout = r.getDuration("cluster.lease_timeout").value_or(c.lease_timeout);
  if (c.lease_timeout < std::chrono::seconds(1)) {
    r.problem("cluster.lease_timeout", "must be at least 1s");
  }
  c.heartbeat_interval = r.getDuration("cluster.heartbeat_interval")
                             .value_or(std::max(std::chrono::milliseconds(100), c.lease_timeout / 3));
  if (c.heartbeat_interval >= c.lease_timeout) {
    r.problem("cluster.heartbeat_interval", "must be shorter than cluster.lease_timeout");
  }
  c.poll_interval = r.getDuration("cluster.poll_interval").value_or(c.poll_interval);
  if (c.enabled && !config.sqlite_path.empty()) {
    r.problem("cluster.enabled",
              "needs a PostgreSQL store (store.url = postgresql://...); several nodes cannot "
              "share a SQLite file");
  }
}

}  // namespace config_detail
}  // namespace collectord
