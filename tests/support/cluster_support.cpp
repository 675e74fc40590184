#include "cluster_support.h"

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "api_checks.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

// Each line of a collector script that the cluster's nodes share. `record` is one echo, which
// sh writes with a single write(2) on the O_APPEND descriptor, so lines from many processes on
// many nodes never interleave.
constexpr const char* kSharedPrelude = R"(#!/bin/sh
record() { echo "$*" >> "$SHARED/records"; }
progress() { printf '{"progress": %s, "message": "%s"}\n' "$1" "$2" >&3; }
write_pid() { echo $$ > "$SHARED/$1.pid.tmp" && mv "$SHARED/$1.pid.tmp" "$SHARED/$1.pid"; }
wait_for_release() {
  waited=0
  while [ ! -e "$SHARED/release/$1" ]; do
    waited=$((waited + 1))
    if [ "$waited" -gt 1200 ]; then exit 99; fi
    sleep 0.05
  done
}
)";

std::string durationText(std::chrono::milliseconds value) {
  return std::to_string(value.count()) + "ms";
}

std::string nodeIni(const NodeSpec& spec) {
  std::string ini =
      "[collectors]\n"
      "shutdown_grace = 2s\n"
      "[node]\n"
      "id = " + spec.id + "\n";
  if (!spec.tags.empty()) ini += "tags = " + spec.tags + "\n";
  ini +=
      "[cluster]\n"
      "enabled = true\n"
      "lease_timeout = " + durationText(kLeaseTimeout) + "\n"
      "heartbeat_interval = " + durationText(kHeartbeatInterval) + "\n"
      "poll_interval = " + durationText(kPollInterval) + "\n";
  return ini + spec.extra_ini;
}

::testing::AssertionResult isStringArray(const Poco::JSON::Object& object, const std::string& key,
                                         std::vector<std::string>& out) {
  if (!object.isArray(key)) return ::testing::AssertionFailure() << key << " is not an array";
  const auto array = object.getArray(key);
  for (std::size_t i = 0; i < array->size(); ++i) {
    const Poco::Dynamic::Var item = array->get(static_cast<unsigned>(i));
    if (!item.isString()) {
      return ::testing::AssertionFailure() << key << "[" << i << "] is not a string";
    }
    out.push_back(item.extract<std::string>());
  }
  return ::testing::AssertionSuccess();
}

bool isTimestamp(const std::string& text) {
  return isMicroTimestamp(text) || isSecondTimestamp(text);
}

// One node of the listing, parsed; failure names the field.
::testing::AssertionResult parseNode(const Poco::JSON::Object& item, NodeView& node) {
  for (const char* key : {"node_id", "state", "started_at", "heartbeat_at"}) {
    if (!item.has(key) || !item.get(key).isString()) {
      return ::testing::AssertionFailure() << key << " is " << jsonOf(item, key) << ", not a string";
    }
  }
  node.node_id = stringField(item, "node_id");
  node.state = stringField(item, "state");
  node.started_at = stringField(item, "started_at");
  node.heartbeat_at = stringField(item, "heartbeat_at");
  if (node.state != "alive" && node.state != "lost" && node.state != "stopped") {
    return ::testing::AssertionFailure() << node.node_id << ": state '" << node.state << "'";
  }
  for (const std::string* stamp : {&node.started_at, &node.heartbeat_at}) {
    if (!isTimestamp(*stamp)) {
      return ::testing::AssertionFailure() << node.node_id << ": '" << *stamp
                                           << "' is not a timestamp";
    }
  }
  if (auto tags = isStringArray(item, "tags", node.tags); !tags) {
    return tags << " (" << node.node_id << ")";
  }
  if (auto jobs = isStringArray(item, "running_jobs", node.running_jobs); !jobs) {
    return jobs << " (" << node.node_id << ")";
  }
  const std::optional<std::int64_t> running = intField(item, "running");
  if (!running) {
    return ::testing::AssertionFailure() << node.node_id << ": running is "
                                         << jsonOf(item, "running");
  }
  node.running = *running;
  if (node.running != static_cast<std::int64_t>(node.running_jobs.size())) {
    return ::testing::AssertionFailure() << node.node_id << ": running " << node.running << " but "
                                         << node.running_jobs.size() << " running_jobs";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult parseNodes(const Poco::JSON::Object& body,
                                      std::vector<NodeView>& nodes) {
  if (!body.isArray("nodes")) return ::testing::AssertionFailure() << "nodes is not an array";
  std::vector<Poco::JSON::Object::Ptr> items;
  try {
    items = objectsOf(body, "nodes");
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << e.what();
  }
  for (const auto& item : items) {
    NodeView node;
    if (auto parsed = parseNode(*item, node); !parsed) return parsed;
    nodes.push_back(std::move(node));
  }
  if (intField(body, "count") != static_cast<std::int64_t>(nodes.size())) {
    return ::testing::AssertionFailure() << "count is " << jsonOf(body, "count") << " for "
                                         << nodes.size() << " nodes";
  }
  for (std::size_t i = 1; i < nodes.size(); ++i) {
    if (!(nodes[i - 1].node_id < nodes[i].node_id)) {
      return ::testing::AssertionFailure() << "not ordered by node_id: " << nodes[i - 1].node_id
                                           << " before " << nodes[i].node_id;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

ClusterNode::ClusterNode(const NodeSpec& spec, const std::string& store_url)
    : id_(spec.id), config_(dir_) {
  config_.useStore(store_url);
  config_.appendToMain(nodeIni(spec));
}

void ClusterNode::start() {
  if (running()) throw std::logic_error(id_ + " is already running");
  daemon_.reset();
  daemon_ = std::make_unique<Daemon>(config_);
}

Daemon& ClusterNode::daemon() {
  if (!daemon_) throw std::logic_error(id_ + " was never started");
  return *daemon_;
}

HttpClient ClusterNode::client() const {
  if (!daemon_) throw std::logic_error(id_ + " was never started");
  return daemon_->client();
}

TestCluster::TestCluster(const std::string& store_url, const std::vector<NodeSpec>& nodes)
    : store_url_(store_url) {
  writeFile(recordsPath(), "");
  for (const NodeSpec& spec : nodes) nodes_.push_back(std::make_unique<ClusterNode>(spec, store_url));
}

TestCluster::~TestCluster() {
  nodes_.clear();
  // A killed node's collectors die with it (PR_SET_PDEATHSIG), but their own children, and the
  // collectors of a node whose stop went wrong, must not outlive the test.
  for (pid_t pid : collectorProcesses()) {
    std::cerr << "[cluster test] killing leftover collector process " << pid << "\n";
    ::kill(pid, SIGKILL);
  }
}

void TestCluster::addCollector(const std::string& name, const std::string& script,
                               const Keys& keys) {
  Keys all = keys;
  all.emplace_back("env.SHARED", shared());
  for (auto& node : nodes_) node->config().addCollector(name, kSharedPrelude + script, all);
}

void TestCluster::appendToMain(const std::string& ini_text) {
  for (auto& node : nodes_) node->config().appendToMain(ini_text);
}

void TestCluster::startAll() {
  for (auto& node : nodes_) node->start();
}

ClusterNode& TestCluster::node(const std::string& id) {
  for (auto& node : nodes_) {
    if (node->id() == id) return *node;
  }
  throw std::out_of_range("no node " + id);
}

std::vector<std::string> TestCluster::ids() const {
  std::vector<std::string> out;
  for (const auto& node : nodes_) out.push_back(node->id());
  return out;
}

std::string TestCluster::recordsPath() const { return shared_.file("records"); }

std::vector<std::vector<std::string>> TestCluster::records() const {
  std::vector<std::vector<std::string>> out;
  for (const std::string& line : readLines(recordsPath())) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string word; in >> word;) words.push_back(word);
    out.push_back(std::move(words));
  }
  return out;
}

void TestCluster::release(const std::string& word) const {
  writeFile(shared_.file("release/" + word), "");
}

std::vector<pid_t> TestCluster::collectorProcesses() const {
  return processesWithEnvironment("SHARED=" + shared());
}

::testing::AssertionResult NothingRunning(const HttpClient& client) {
  std::string problem;
  const auto nodes = listNodes(client, &problem);
  if (!nodes) return ::testing::AssertionFailure() << "GET /api/nodes: " << problem;
  for (const NodeView& node : *nodes) {
    if (node.running != 0) {
      return ::testing::AssertionFailure() << node.node_id << " still runs " << node.running
                                           << " job(s)";
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult HasNodesShape(const Poco::JSON::Object& body) {
  std::vector<NodeView> nodes;
  return parseNodes(body, nodes);
}

std::optional<std::vector<NodeView>> listNodes(const HttpClient& client, std::string* problem) {
  const HttpResponse response = client.get("/api/nodes");
  if (auto json = IsJsonResponse(response, 200); !json) {
    if (problem) *problem = json.message();
    return std::nullopt;
  }
  std::vector<NodeView> nodes;
  if (auto parsed = parseNodes(*response.object(), nodes); !parsed) {
    if (problem) *problem = std::string(parsed.message()) + " in " + response.body;
    return std::nullopt;
  }
  return nodes;
}

std::optional<NodeView> findNode(const std::vector<NodeView>& nodes, const std::string& node_id) {
  for (const NodeView& node : nodes) {
    if (node.node_id == node_id) return node;
  }
  return std::nullopt;
}

std::string jobNodeId(const HttpClient& client, const std::string& job_id) {
  const HttpResponse response = client.job(job_id);
  const auto body = response.object();
  if (response.status != 200 || !body || !body->has("node_id")) return "";
  if (body->isNull("node_id")) return "<null>";
  return stringField(*body, "node_id");
}

void Cluster::SetUpTestSuite() {
  if (!sharedPostgres()) server_ = std::make_unique<PostgresServer>();
}

void Cluster::TearDownTestSuite() { server_.reset(); }

void Cluster::SetUp() {
  // These tests start a server of their own; the run against the shared one adds nothing.
  if (!server_) GTEST_SKIP() << "runs once, in the SQLite run, on a server of its own";
}

void Cluster::TearDown() {
  if (server_ && server_down_) startServer();
}

std::string Cluster::freshDatabase() { return createDatabase(server_->url(), "cluster"); }

std::unique_ptr<TestCluster> Cluster::threeNodes(const std::map<std::string, std::string>& tags,
                                                 const std::map<std::string, std::string>& extra_ini) {
  std::vector<NodeSpec> specs;
  for (const std::string& id : {kNodeA, kNodeB, kNodeC}) {
    const auto tag = tags.find(id);
    const auto extra = extra_ini.find(id);
    specs.push_back({id, tag == tags.end() ? "" : tag->second,
                     extra == extra_ini.end() ? "" : extra->second});
  }
  return std::make_unique<TestCluster>(freshDatabase(), specs);
}

void Cluster::killServer() {
  server_down_ = true;
  server_->kill();
}

void Cluster::stopServer() {
  server_down_ = true;
  server_->stop();
}

void Cluster::startServer() {
  server_->start();
  server_down_ = false;
}

}  // namespace collectord::test
