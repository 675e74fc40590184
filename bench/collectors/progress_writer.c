// A collector that writes COUNT protocol lines as fast as it can, the way a small C collector
// would: stdio on the progress descriptor, one fprintf per line, the stream's default
// buffering (full buffering, one write per few kilobytes), one flush at the end.
//   {"progress": P, "message": "Processing page N/COUNT"}     with P = N * 100 / COUNT
// It writes to the descriptor named by COLLECTOR_PROGRESS_FD when collectord runs it, else to
// stdout, so the same program gives the baseline as `progress_writer COUNT | cat > /dev/null`.
//
// usage: progress_writer [COUNT]   (default 1000000)
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  const unsigned long count = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000UL;
  const char* fd_text = getenv("COLLECTOR_PROGRESS_FD");
  FILE* out = fd_text ? fdopen(atoi(fd_text), "w") : stdout;
  if (!out) {
    perror("fdopen");
    return 1;
  }
  for (unsigned long n = 1; n <= count; ++n) {
    if (fprintf(out, "{\"progress\": %lu, \"message\": \"Processing page %lu/%lu\"}\n",
                n * 100 / count, n, count) < 0) {
      perror("write");
      return 1;
    }
  }
  if (fflush(out) != 0) {
    perror("write");
    return 1;
  }
  return 0;
}
