#pragma once

// Several collectord nodes in cluster mode on one PostgreSQL database, for the Cluster suite
// (tests/integration/cluster_*_test.cpp): a folder and a config per node, collectors added to
// every node alike, one folder all the nodes' collectors share (records, release files), the
// GET /api/nodes answer parsed and checked, and the suite fixture with its own server.
// Like the rest of the harness, nothing here sleeps to synchronise.

#include <Poco/JSON/Object.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon_harness.h"
#include "postgres_server.h"

namespace collectord::test {

// The cluster timings every node of the suite is given: short, so that failover is quick.
inline constexpr std::chrono::milliseconds kLeaseTimeout{2000};
inline constexpr std::chrono::milliseconds kHeartbeatInterval{500};
inline constexpr std::chrono::milliseconds kPollInterval{200};

// One node to be: its id, its comma-separated tags ("" for none), and INI text of its own
// appended to its collectord.ini (e.g. "[collectors]\nmax_concurrent = 2\n").
struct NodeSpec {
  std::string id;
  std::string tags;
  std::string extra_ini;
};

// One node's folder, config and, once started, daemon. The daemon goes first on destruction.
class ClusterNode {
 public:
  ClusterNode(const NodeSpec& spec, const std::string& store_url);
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  const std::string& id() const { return id_; }
  DaemonConfig& config() { return config_; }
  const DaemonConfig& config() const { return config_; }

  // Starts the daemon (throws as Daemon's constructor does); it must not be running.
  void start();
  bool running() const { return daemon_ && daemon_->running(); }
  // The running daemon; throws std::logic_error when it was never started.
  Daemon& daemon();
  // A client of the daemon's port (the last one it had, once stopped or killed).
  HttpClient client() const;

 private:
  std::string id_;
  TempDir dir_;
  DaemonConfig config_;
  std::unique_ptr<Daemon> daemon_;
};

// Nodes on one database, each with [node] id/tags and [cluster] enabled with the timings above.
// Collectors added here go to every node with the same script; each script may call
// `record WORDS...` (one line appended to shared() + "/records" with a single O_APPEND write),
// `progress PERCENT MESSAGE` (a progress line), `write_pid NAME` (its pid, atomically, to
// pidPath(NAME)) and `wait_for_release WORD` (blocks until release(WORD); gives up after about
// a minute).
// On destruction the daemons are stopped, then every process a collector of this cluster left
// behind (an orphan of a killed node) is SIGKILLed, then the folders go.
class TestCluster {
 public:
  TestCluster(const std::string& store_url, const std::vector<NodeSpec>& nodes);
  ~TestCluster();
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  // Adds collector NAME to every node: `script` after the shared prelude, `keys` under
  // [collector] (env.SHARED is set to shared()).
  void addCollector(const std::string& name, const std::string& script, const Keys& keys = {});
  // Appends INI text to every node's collectord.ini.
  void appendToMain(const std::string& ini_text);
  // Starts every node, in the order given to the constructor.
  void startAll();

  // The node with this id; throws std::out_of_range when there is none.
  ClusterNode& node(const std::string& id);
  std::vector<std::string> ids() const;
  const std::string& storeUrl() const { return store_url_; }

  // The folder every collector sees as $SHARED.
  const std::string& shared() const { return shared_.path(); }
  std::string recordsPath() const;
  // Lines of the records file, each split at spaces.
  std::vector<std::vector<std::string>> records() const;
  // Where `write_pid NAME` puts the script's pid (see waitForPidFile).
  std::string pidPath(const std::string& name) const { return shared_.file(name + ".pid"); }
  // Lets `wait_for_release WORD` go on, in whichever node's collector it blocks.
  void release(const std::string& word) const;

  // Live processes whose environment says they belong to this cluster's collectors.
  std::vector<pid_t> collectorProcesses() const;

 private:
  TempDir shared_;  // first: removed last
  std::string store_url_;
  std::vector<std::unique_ptr<ClusterNode>> nodes_;
};

// One entry of GET /api/nodes.
struct NodeView {
  std::string node_id;
  std::vector<std::string> tags;
  std::string state;
  std::string started_at;
  std::string heartbeat_at;
  std::int64_t running = -1;
  std::vector<std::string> running_jobs;
};

// The documented shape of GET /api/nodes: {"nodes": [...], "count": N}, every field of every
// node typed as documented, count equal to the list's size, ordered by node_id, `running`
// equal to the size of `running_jobs`, state one of alive, lost, stopped.
::testing::AssertionResult HasNodesShape(const Poco::JSON::Object& body);
// GET /api/nodes through `client`: its nodes when it answered 200 with the documented shape,
// else nullopt (with the reason in `*problem` when given).
std::optional<std::vector<NodeView>> listNodes(const HttpClient& client,
                                               std::string* problem = nullptr);
// Every node's `running` in GET /api/nodes is 0: no job is left running anywhere.
::testing::AssertionResult NothingRunning(const HttpClient& client);
// The node `node_id` of a listing, or nullopt.
std::optional<NodeView> findNode(const std::vector<NodeView>& nodes, const std::string& node_id);

// The "node_id" of the job as GET job answers it: "<null>" for JSON null, "" when there is no
// answer or no such field.
std::string jobNodeId(const HttpClient& client, const std::string& job_id);

// The test's Cluster fixture: a PostgreSQL server of the suite's own, started once (as the
// PostgresDaemon suite has), a fresh database per test. Skips itself in the run against the
// shared server, which it adds nothing to.
class Cluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  // Brings the server back when a test left it stopped.
  void TearDown() override;

  // A new empty database on the suite's server.
  static std::string freshDatabase();
  static PostgresServer& server() { return *server_; }
  // Three nodes node-a, node-b, node-c on a fresh database, with these tags and INI extras
  // (by node id; missing ids get none).
  static std::unique_ptr<TestCluster> threeNodes(
      const std::map<std::string, std::string>& tags = {},
      const std::map<std::string, std::string>& extra_ini = {});

  // Stops and starts the server, remembering it is down in between so that TearDown restarts
  // it after a failed assertion.
  static void killServer();
  static void stopServer();
  static void startServer();

  static inline const std::string kNodeA = "node-a";
  static inline const std::string kNodeB = "node-b";
  static inline const std::string kNodeC = "node-c";

 private:
  static inline std::unique_ptr<PostgresServer> server_;
  static inline bool server_down_ = false;
};

}  // namespace collectord::test
