/*
 * config_syntax.c - the shapes of the config's strings: currency codes,
 * symbols, source names, base URLs and listen addresses (config_int.h).
 */
/* Autoconf's header; "config.h" would find this folder's config.h. */
#include "config.h"

#include "daemon/config_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool
is_upper_alnum(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

bool
cfg_is_currency(const char *s, size_t len)
{
	if (len == 0 || len >= CFG_CCY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_upper_alnum(s[i]))
			return false;
	return true;
}

bool
cfg_is_source_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= AGG_SOURCE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!is_upper_alnum(ch) && !(ch >= 'a' && ch <= 'z') &&
		    ch != '_' && ch != '.' && ch != '-')
			return false;
	}
	return true;
}

bool
cfg_split_symbol(const char *s, char *base, char *quote)
{
	const char *dash = strchr(s, '-');
	size_t lb, lq;

	if (dash == NULL)
		return false;
	lb = (size_t)(dash - s);
	lq = strlen(dash + 1);
	if (!cfg_is_currency(s, lb) || !cfg_is_currency(dash + 1, lq))
		return false;
	memcpy(base, s, lb);
	base[lb] = '\0';
	memcpy(quote, dash + 1, lq + 1);
	return true;
}

/* s[0..len) is a decimal port of 1 to 5 digits, at most 65535. */
static bool
parse_port(const char *s, size_t len, unsigned long *out)
{
	unsigned long port = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	if (port > 65535)
		return false;
	*out = port;
	return true;
}

bool
cfg_check_url(const char *s, char *why, size_t cap)
{
	size_t n = strlen(s), skip;
	const char *host, *end, *colon = NULL;
	unsigned long port;

	if (n > CFG_URL_MAX) {
		snprintf(why, cap, "longer than %d characters", CFG_URL_MAX);
		return false;
	}
	if (strncasecmp(s, "http://", 7) == 0) {
		skip = 7;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		skip = 8;
	} else {
		snprintf(why, cap, "must start with http:// or https://");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= ' ' || ch >= 0x7f) {
			snprintf(why, cap, "contains a space, a control or a "
				 "non-ASCII character");
			return false;
		}
		if (ch == '?' || ch == '#') {
			snprintf(why, cap, "must not have a query or fragment");
			return false;
		}
	}
	host = s + skip;
	end = strchr(host, '/');
	if (end == NULL)
		end = s + n;
	if (memchr(host, '@', (size_t)(end - host)) != NULL) {
		snprintf(why, cap, "must not carry user information");
		return false;
	}
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));

		if (rb == NULL || rb == host + 1 ||
		    (rb + 1 < end && rb[1] != ':')) {
			snprintf(why, cap, "has a malformed [IPv6] host");
			return false;
		}
		if (rb + 1 < end)
			colon = rb + 1;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		if ((colon != NULL ? colon : end) == host) {
			snprintf(why, cap, "has no host");
			return false;
		}
	}
	if (colon != NULL &&
	    (!parse_port(colon + 1, (size_t)(end - colon - 1), &port) ||
	     port == 0)) {
		snprintf(why, cap, "has a bad port");
		return false;
	}
	return true;
}

bool
cfg_parse_listen(const char *s, struct cfg *cfg, char *why, size_t cap)
{
	char host[CFG_HOST_MAX];
	const char *port_s;
	size_t hlen;
	unsigned long port;
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':') {
			snprintf(why, cap, "expected \"[IPV6]:PORT\"");
			return false;
		}
		hlen = (size_t)(rb - s - 1);
		memcpy(host, s + 1, hlen < sizeof(host) ? hlen : 0);
		port_s = rb + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon == NULL) {
			snprintf(why, cap, "expected \"ADDRESS:PORT\"");
			return false;
		}
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen) != NULL) {
			snprintf(why, cap, "write IPv6 addresses in brackets, "
				 "e.g. \"[::1]:8080\"");
			return false;
		}
		memcpy(host, s, hlen < sizeof(host) ? hlen : 0);
		port_s = colon + 1;
	}
	if (hlen >= sizeof(host)) {
		snprintf(why, cap, "address too long");
		return false;
	}
	host[hlen] = '\0';
	if (!parse_port(port_s, strlen(port_s), &port)) {
		snprintf(why, cap, "expected a port 0-65535 after the ':'");
		return false;
	}
	memset(&ss, 0, sizeof(ss));
	if (s[0] != '[') {
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
			snprintf(why, cap, "expected a numeric IPv4 address "
				 "or a bracketed IPv6 address");
			return false;
		}
		memcpy(&ss, &sin, sizeof(sin));
		sslen = sizeof(sin);
	} else {
		struct sockaddr_in6 sin6;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1) {
			snprintf(why, cap, "expected a numeric IPv6 address "
				 "in the brackets");
			return false;
		}
		memcpy(&ss, &sin6, sizeof(sin6));
		sslen = sizeof(sin6);
	}
	memcpy(cfg->listen_host, host, hlen + 1);
	cfg->listen_port = (uint16_t)port;
	cfg->listen_addr = ss;
	cfg->listen_addrlen = sslen;
	return true;
}
