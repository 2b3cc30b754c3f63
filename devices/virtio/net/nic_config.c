/* `--nic` parsing (see nic_config.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/net/nic_config.h"
#include "net/switch_core.h"
#include "net/switch_proto.h"
#include "net/tap.h"
#include "lib/error.h"

static bool name_ok(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int nic_config_parse(const char *val, struct nic_config *out)
{
	memset(out, 0, sizeof(*out));
	out->queues = 1;
	bool backend = false;
	const char *p = val;
	while (*p) {
		size_t len = strcspn(p, ",");
		char item[96];
		if (len >= sizeof(item))
			return error_set(-EINVAL, "--nic '%.60s': item too long", val);
		memcpy(item, p, len);
		item[len] = 0;
		char *eq = strchr(item, '=');
		const char *v = eq ? eq + 1 : "";
		if (eq)
			*eq = 0;
		if (!strcmp(item, "switch") || !strcmp(item, "tap")) {
			bool tap = item[0] == 't';
			if (backend)
				return error_set(-EINVAL, "--nic '%.60s': one switch= or tap= only",
						 val);
			if (!name_ok(v, strlen(v), tap ? TAP_NAME_MAX : 64))
				return error_set(
				    -EINVAL,
				    "--nic '%.60s': bad %s name '%s' (1-%d of A-Z a-z 0-9 _ . -)",
				    val, item, v, tap ? TAP_NAME_MAX : 64);
			out->backend = tap ? NIC_TAP : NIC_SWITCH;
			snprintf(out->name, sizeof(out->name), "%s", v);
			backend = true;
		} else if (!strcmp(item, "mac")) {
			if (switch_mac_parse(v, out->mac) < 0 || (out->mac[0] & 1) ||
			    !memcmp(out->mac, "\0\0\0\0\0\0", 6))
				return error_set(
				    -EINVAL,
				    "--nic '%.60s': bad mac '%s' (unicast xx:xx:xx:xx:xx:xx)", val,
				    v);
			out->has_mac = true;
		} else if (!strcmp(item, "vlan")) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);
			if (!*v || *v < '0' || *v > '9' || *end || n < 1 || n > SWITCH_VLAN_MAX)
				return error_set(-EINVAL, "--nic '%.60s': bad vlan '%s' (1-%d)",
						 val, v, SWITCH_VLAN_MAX);
			out->vlan = (unsigned)n;
		} else if (!strcmp(item, "queues")) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);
			if (!*v || *v < '0' || *v > '9' || *end || n < 1 || n > NIC_QUEUES_MAX)
				return error_set(-EINVAL, "--nic '%.60s': bad queues '%s' (1-%d)",
						 val, v, NIC_QUEUES_MAX);
			out->queues = (unsigned)n;
		} else {
			return error_set(-EINVAL,
					 "--nic '%.60s': unknown item '%s' (switch=, tap=, mac=, "
					 "vlan=, queues=)",
					 val, item);
		}
		p += len;
		if (*p == ',' && !*++p)
			return error_set(-EINVAL, "--nic '%.60s': trailing comma", val);
	}
	if (!backend)
		return error_set(-EINVAL, "--nic '%.60s': needs switch=NAME or tap=TAPNAME", val);
	if (out->vlan && out->backend == NIC_TAP)
		return error_set(-EINVAL, "--nic '%.60s': vlan= is for switch ports", val);
	return 0;
}

void nic_default_mac(const char *vm_name, unsigned index, uint8_t mac[6])
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 */
	for (const char *c = vm_name; *c; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ULL;
	h = (h ^ 0xFF) * 1099511628211ULL; /* separates "vm1"+index 0 from "vm10"... */
	h = (h ^ index) * 1099511628211ULL;
	mac[0] = 0x02; /* locally administered, unicast */
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
}
