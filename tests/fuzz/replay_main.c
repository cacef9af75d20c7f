/* Corpus replay driver: runs a libFuzzer target's LLVMFuzzerTestOneInput over every file of a
 * corpus directory, so each fuzz corpus is an ordinary test in every build (no clang needed).
 * Exits non-zero when the directory is missing or empty: a replay that ran nothing is a failure. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (8u << 20)

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	uint8_t *buf = malloc(REPLAY_MAX_INPUT);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, REPLAY_MAX_INPUT, f);
	fclose(f);
	/* Copy into an exact-size allocation so ASan catches reads past the input. */
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	DIR *d = opendir(argv[1]);
	if (!d) {
		fprintf(stderr, "replay: cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	unsigned ran = 0, failed = 0;
	struct dirent *e;
	char path[4096];
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
		struct stat st;
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(path) < 0) {
			fprintf(stderr, "replay: %s: read failed\n", path);
			failed++;
			continue;
		}
		ran++;
	}
	closedir(d);
	printf("%u passed, %u failed\n", ran, failed);
	return (ran == 0 || failed) ? 1 : 0;
}
