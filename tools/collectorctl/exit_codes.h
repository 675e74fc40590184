#pragma once

// What collectorctl's exit status means. docs/collectorctl.md lists the same table: scripts
// rely on these numbers, so they never change meaning.
namespace collectorctl {

// The command did what was asked (`run --wait`: every job completed).
inline constexpr int kExitOk = 0;
// `--wait` (run, status): at least one job failed or was cancelled.
inline constexpr int kExitRunFailed = 1;
// A bad command line or bad client settings; the usage is printed.
inline constexpr int kExitUsage = 2;
// The server refused the request (its `error` message is printed) or could not be reached.
inline constexpr int kExitServer = 3;
// Interrupted (Ctrl-C or SIGTERM) while waiting; the runs go on on the server.
inline constexpr int kExitInterrupted = 130;

}  // namespace collectorctl
