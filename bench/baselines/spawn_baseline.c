// The raw spawn rate: `count` runs of a program (default /bin/true), at most `parallel` at once,
// with posix_spawn + waitpid and nothing else. What collectord's spawn figure is measured
// against: the same runs, with a supervisor, a store and a state machine in between.
//
// usage: spawn_baseline COUNT PARALLEL [PROGRAM]
// prints: runs=N seconds=S runs_per_second=R
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char** environ;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s COUNT PARALLEL [PROGRAM]\n", argv[0]);
    return 64;
  }
  const long count = strtol(argv[1], NULL, 10);
  const long parallel = strtol(argv[2], NULL, 10);
  char* program = argc > 3 ? argv[3] : "/bin/true";
  char* child_argv[] = {program, NULL};
  if (count < 1 || parallel < 1) {
    fprintf(stderr, "COUNT and PARALLEL must be positive\n");
    return 64;
  }
  const double start = now();
  long started = 0, finished = 0;
  while (finished < count) {
    while (started < count && started - finished < parallel) {
      pid_t pid;
      if (posix_spawn(&pid, program, NULL, NULL, child_argv, environ) != 0) {
        perror("posix_spawn");
        return 1;
      }
      ++started;
    }
    int status;
    if (waitpid(-1, &status, 0) == -1) {
      perror("waitpid");
      return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "a child failed (wait status %d)\n", status);
      return 1;
    }
    ++finished;
  }
  const double seconds = now() - start;
  printf("runs=%ld seconds=%.6f runs_per_second=%.1f\n", count, seconds, (double)count / seconds);
  return 0;
}
