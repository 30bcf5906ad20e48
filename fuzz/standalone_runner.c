/*
 * standalone_runner.c - replay fuzz inputs without libFuzzer (as curl-fuzzer's
 * standalone_fuzz_target_runner does), so the regular test run exercises every
 * corpus file and every former crash. Link with one fuzz_*.c target.
 *
 *   replay_<target> FILE|DIR...      (directories: every regular file inside, sorted by readdir)
 *
 * Prints TAP ("ok N - path"); a crash aborts the process, so a non-zero exit
 * means a regression. Exits 1 when no input was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count = 0, failed = 0;

static void run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  long n;
  uint8_t *buf;
  if (!f) { printf("not ok %d - %s (cannot open)\n", ++count, path); failed++; return; }
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    printf("not ok %d - %s (cannot size)\n", ++count, path);
    failed++;
    return;
  }
  buf = malloc(n ? (size_t)n : 1); /* exact size, so ASan catches any over-read */
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(buf);
    printf("not ok %d - %s (cannot read)\n", ++count, path);
    failed++;
    return;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  printf("ok %d - %s\n", ++count, path);
  fflush(stdout);
}

static void run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) { printf("not ok %d - %s (missing)\n", ++count, path); failed++; return; }
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    if (!d) { printf("not ok %d - %s (cannot list)\n", ++count, path); failed++; return; }
    while ((e = readdir(d)) != NULL) {
      char sub[4096];
      if (e->d_name[0] == '.') continue;
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      run_path(sub);
    }
    closedir(d);
  } else if (S_ISREG(st.st_mode)) {
    run_file(path);
  }
}

int main(int argc, char **argv) {
  int i;
  for (i = 1; i < argc; i++) run_path(argv[i]);
  printf("1..%d\n", count);
  if (count == 0) { fprintf(stderr, "no inputs\n"); return 1; }
  return failed ? 1 : 0;
}
