/* listenpolicy: see listenpolicy.h. */
#include "listenpolicy.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static bool addr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* host of at most 255 bytes, brackets of an IPv6 literal removed */
static bool host_loopback(const char *host, size_t n)
{
	char h[256];
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(h))
		return false;
	memcpy(h, host, n);
	h[n] = 0;
	if (!strcmp(h, "*"))
		return false;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if (getaddrinfo(h, NULL, &hints, &ai) != 0 || !ai)
		return false;
	bool all = true;
	for (struct addrinfo *p = ai; p; p = p->ai_next)
		all = all && addr_loopback(p->ai_addr);
	freeaddrinfo(ai);
	return all;
}

bool listenpolicy_host_is_loopback(const char *host)
{
	return host && host_loopback(host, strlen(host));
}

bool listenpolicy_url_is_loopback(const char *url)
{
	if (!url)
		return false;
	const char *sep = strstr(url, "://");
	if (!sep)
		return false;
	size_t sl = (size_t)(sep - url);
	static const char *const local[] = { "ipc", "inproc", "abstract" };
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if (sl == strlen(local[i]) && !strncmp(url, local[i], sl))
			return true;
	const char *host = sep + 3;
	size_t n = strcspn(host, "/"); /* ws://host:port/path */
	/* the port is after the last ':' unless that ':' is inside an IPv6 literal's brackets */
	const char *close = memchr(host, ']', n);
	const char *colon = NULL;
	for (const char *p = close ? close : host; p < host + n; p++)
		if (*p == ':')
			colon = p;
	if (colon)
		n = (size_t)(colon - host);
	return host_loopback(host, n);
}

int listenpolicy_check(const char *what, const char *addr, bool is_url, bool authenticated, const char *need,
		       char *msg, size_t len)
{
	if (authenticated)
		return 0;
	if (is_url ? listenpolicy_url_is_loopback(addr) : listenpolicy_host_is_loopback(addr))
		return 0;
	if (msg && len)
		snprintf(msg, len, "%s %.200s is not loopback: refusing to serve it without %s", what,
			 addr && addr[0] ? addr : "(all addresses)", need);
	return -EPERM;
}
