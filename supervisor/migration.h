#pragma once

#include <string>
#include <vector>

namespace collectord {

// One numbered schema change, from schema/<database>/NNN_name.sql.
struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// The SQLite migrations, in order. Embedded in the binary at build time.
const std::vector<Migration>& sqliteMigrations();
// The PostgreSQL migrations, in order. Embedded in the binary at build time.
const std::vector<Migration>& postgresMigrations();

// Splits a migration into statements at semicolons that end a line.
std::vector<std::string> splitSqlStatements(const std::string& sql);

}  // namespace collectord
