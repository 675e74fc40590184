#pragma once

// The PostgreSQL store's state in cluster mode (postgres_cluster.cpp). Internal to the store.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster_store.h"
#include "postgres_job_store.h"
#include "postgres_support.h"

namespace collectord {

struct PostgresJobStore::Cluster {
  std::string node_id;
  std::vector<std::string> tags;
  std::chrono::milliseconds lease{0};
  ClusterHooks hooks;
  std::mutex mutex;  // the connection is used by one thread at a time
  std::unique_ptr<postgres::PgConnection> connection;
  // Heartbeats have a connection of their own: a long write of the supervision thread must
  // not delay them past the lease.
  std::mutex heartbeat_mutex;
  std::unique_ptr<postgres::PgConnection> heartbeat_connection;
  std::unique_ptr<postgres::PgConnection> identity;  // holds the node id's advisory lock
};

}  // namespace collectord
