/*
 * Which processes see the illusion: Ollama's GPU processes by their comm
 * (research/ollama-gpu.md §3) plus the names in procfake.conf.  Pure text
 * handling; init.c reads the files with raw system calls.
 */
#include <errno.h>
#include <string.h>

#include "pf.h"

static const char *const pf_builtin[] = {
	"ollama",
	"llama-server",
	"ollama_llama_se",	/* "ollama_llama_server" as the kernel truncates it */
};

static int pf_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/*
 * One name a line; blank lines and lines starting with '#' are skipped;
 * surrounding blanks are ignored.  The kernel keeps 15 bytes of a command
 * name, so longer names are cut to what comm can hold.
 */
int pf_names_parse(const char *buf, size_t len, struct pf_names *names)
{
	size_t pos = 0;

	names->n = 0;
	if (memchr(buf, '\0', len))
		return -EINVAL;
	while (pos < len) {
		const char *s = buf + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - s) : len - pos;

		pos += ll + (nl ? 1 : 0);
		while (ll > 0 && pf_is_space(*s)) {
			s++;
			ll--;
		}
		while (ll > 0 && pf_is_space(s[ll - 1]))
			ll--;
		if (ll == 0 || s[0] == '#')
			continue;
		if (names->n == PF_NAMES_MAX)
			return -EINVAL;
		if (ll > PF_COMM_MAX - 1)
			ll = PF_COMM_MAX - 1;
		memcpy(names->name[names->n], s, ll);
		names->name[names->n][ll] = '\0';
		names->n++;
	}
	return 0;
}

static int pf_name_eq(const char *name, const char *comm, size_t len)
{
	return strlen(name) == len && memcmp(name, comm, len) == 0;
}

int pf_names_match(const struct pf_names *names, const char *comm, size_t len)
{
	size_t i;

	if (len > 0 && comm[len - 1] == '\n')
		len--;
	if (len == 0 || len >= PF_COMM_MAX)
		return 0;
	for (i = 0; i < sizeof(pf_builtin) / sizeof(pf_builtin[0]); i++)
		if (pf_name_eq(pf_builtin[i], comm, len))
			return 1;
	for (i = 0; names && i < names->n; i++)
		if (pf_name_eq(names->name[i], comm, len))
			return 1;
	return 0;
}
