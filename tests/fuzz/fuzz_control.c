/* The control protocol: one request through control_request_handle, as the server's worker runs
 * it, against a server with the built-in verbs, an echo verb and the verbs of a machine's devices
 * (devices_create with a CD-ROM, a disk and the balloon: cdrom-eject, cdrom-insert, balloon,
 * stats), without a VM or a CPU.
 *
 * The first byte picks the form.  Even: the rest is the request line as it came (the JSON parser
 * and the envelope checks).  Odd: the rest describes a request that the harness builds as JSON
 * (version right or wrong, id of any type, a verb from the list or not, args of any shape and
 * strings of any bytes), so that each verb's own argument checks run: random bytes alone almost
 * never make a well-formed request, and json-c is not instrumented to guide the fuzzer there.
 *
 * Whatever came in, the reply must be one line of JSON, an object with "ok"; a well-formed request
 * for a known verb is never answered "unknown verb".  cdrom-insert's ISO path is confined to the
 * harness's directory (a fuzzer must not open the host's devices or FIFOs). */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/disk.h"
#include "devices/io_bus.h"
#include "devices/machine_config.h"
#include "memory/guest_memory.h"
#include "tests/device/ata_fake.h"
#include "tests/fuzz/fuzz_input.h"
#include "vmm/control.h"
#include "vmm/control_internal.h"
#include "lib/error.h"

static struct control_server *srv;
static char dir[] = "/tmp/minivmm-fuzz-control-XXXXXX";
static device_verb_fn real_insert;

static const char *const verbs[] = {
    "help",	    "version", "echo", "cdrom-eject", "cdrom-insert", "balloon", "stats",
    "no-such-verb", "",	       "HELP", "a b",	      "info",	      "\xff"};
#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))
/* Verbs registered here: a well-formed request for one is never "unknown verb". */
#define NKNOWN 7

static int echo(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)opaque;
	json_object_object_add(result, "args", json_object_get(args));
	return 0;
}

/* cdrom-insert with its ISO argument made a name inside the harness's directory: the images made
 * there (an ISO, a directory, a text file) or names that do not exist. */
static int confined_insert(void *opaque, struct json_object *args, struct json_object *result)
{
	struct json_object *a = json_object_new_array();
	if (!a)
		return -ENOMEM;
	size_t n = json_object_array_length(args);
	for (size_t i = 0; i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(args, i));
		char path[256];
		if (i == 0 && s && *s) {
			/* One path component: slashes and dots are folded away. */
			char name[64];
			size_t k = 0;
			for (; s[k] && k < sizeof(name) - 1; k++)
				name[k] = s[k] == '/' || s[k] == '.' ? '_' : s[k];
			name[k] = 0;
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			s = path;
		}
		json_object_array_add(a, json_object_new_string(s ? s : ""));
	}
	int r = real_insert(opaque, a, result);
	json_object_put(a);
	return r;
}

static int add_verb(void *control, const char *verb, const char *usage, device_verb_fn fn,
		    void *opaque)
{
	if (!strcmp(verb, "cdrom-insert")) {
		real_insert = fn;
		fn = confined_insert;
	}
	return control_register_verb(control, verb, usage, fn, opaque);
}

static int no_irq(void *opaque, unsigned gsi, bool level)
{
	(void)opaque, (void)gsi, (void)level;
	return 0;
}

static int no_msi(void *opaque, uint64_t address, uint32_t data)
{
	(void)opaque, (void)address, (void)data;
	return 0;
}

static void no_request(void *opaque, enum device_request why)
{
	(void)opaque, (void)why;
}

static const struct device_irq_ops irq_ops = {.set_irq = no_irq, .signal_msi = no_msi};

/* The machine whose devices register verbs: made once, never run. */
static void machine_create(void)
{
	static struct io_bus pio, mmio;
	static struct guest_memory mem;
	static struct machine_config mc;
	static struct disk_config disks[2];
	static struct device_env env;
	static struct devices *devs;
	char path[128];

	snprintf(path, sizeof(path), "%s/iso", dir);
	if (fake_make_raw(path, 1 << 20, true) < 0 ||
	    disk_config_parse(path, DISK_MEDIA_CDROM, &disks[0]) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/disk", dir);
	if (fake_make_raw(path, 1 << 20, true) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/disk,format=raw,bus=virtio", dir);
	if (disk_config_parse(path, DISK_MEDIA_HDD, &disks[1]) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/adir", dir);
	if (mkdir(path, 0755) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/text", dir);
	FILE *f = fopen(path, "w");
	if (!f || fputs("not an image\n", f) < 0 || fclose(f))
		goto fail;
	mc = (struct machine_config){.name = "fuzz",
				     .cpus = 1,
				     .boot_cpus = 1,
				     .kernel_boot = true,
				     .disks = disks,
				     .ndisks = 2,
				     .memory_mib = 64};
	if (io_bus_init(&pio) < 0 || io_bus_init(&mmio) < 0 ||
	    guest_memory_create(&mem, 64 << 20) < 0)
		goto fail;
	env = (struct device_env){.pio = &pio,
				  .mmio = &mmio,
				  .mem = &mem,
				  .machine = &mc,
				  .console_fd = -1,
				  .irq = &irq_ops,
				  .request = no_request,
				  .add_verb = add_verb,
				  .control = srv};
	if (devices_create(&env, &devs) < 0)
		goto fail;
	return;
fail:
	fprintf(stderr, "fuzz_control: machine: %s\n", error_msg());
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	setenv("XDG_RUNTIME_DIR", dir, 1);
	if (control_server_start("fuzz", &srv) < 0 ||
	    control_register_verb(srv, "echo", "echo [ARGS...]", echo, NULL) < 0) {
		fprintf(stderr, "fuzz_control: %s\n", error_msg());
		abort();
	}
	machine_create();
	return 0;
}

/* A JSON value of any type from the input (for "id", "version", "args" and its elements). */
static struct json_object *any_value(struct fuzz_input *in, const char *s)
{
	switch (take_u8(in) % 7) {
	case 0:
		return json_object_new_int64((int64_t)take_u64(in));
	case 1:
		return json_object_new_string(s);
	case 2:
		return json_object_new_boolean(take_u8(in) & 1);
	case 3:
		return json_object_new_double((double)(int32_t)take_u32(in) / 7.0);
	case 4:
		return json_object_new_array();
	case 5:
		return json_object_new_object();
	default:
		return NULL; /* JSON null */
	}
}

/* The odd form: a request built from the input, serialized, and handled as a line. */
static char *structured(struct fuzz_input *in, bool *known)
{
	uint8_t shape = take_u8(in), vi = take_u8(in) % NVERBS;
	struct json_object *req = json_object_new_object();
	if (!req)
		abort();
	/* The strings: the rest of the input, split at NUL bytes (at most 8). */
	const char *strs[8];
	unsigned ns = 0;
	static char buf[CONTROL_LINE_MAX];
	size_t n = in->n < sizeof(buf) - 1 ? in->n : sizeof(buf) - 1;
	struct fuzz_input tail = *in;
	memcpy(buf, in->p, n);
	buf[n] = 0;
	for (size_t i = 0; i <= n && ns < 8;) {
		strs[ns++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	bool good_version = !(shape & 1), good_verb = !(shape & 2), good_args = !(shape & 4);
	if (good_version)
		json_object_object_add(req, "version",
				       json_object_new_int(CONTROL_PROTOCOL_VERSION));
	else if (!(shape & 8))
		json_object_object_add(req, "version", any_value(&tail, strs[0]));
	if (good_verb)
		json_object_object_add(req, "verb", json_object_new_string(verbs[vi]));
	else if (!(shape & 16))
		json_object_object_add(req, "verb", any_value(&tail, strs[0]));
	if (shape & 32)
		json_object_object_add(req, "id",
				       shape & 64
					   ? any_value(&tail, strs[0])
					   : json_object_new_int64((int64_t)take_u64(&tail)));
	if (good_args && ns > 1) {
		struct json_object *a = json_object_new_array();
		for (unsigned i = 1; i < ns; i++)
			json_object_array_add(a, json_object_new_string(strs[i]));
		json_object_object_add(req, "args", a);
	} else if (!good_args) {
		json_object_object_add(req, "args", any_value(&tail, strs[0]));
	}
	*known = good_version && good_verb && vi < NKNOWN && !(shape & 64 && shape & 32);
	const char *line = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	char *reply = line ? control_request_handle(srv, line, strlen(line)) : NULL;
	json_object_put(req);
	return reply;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > CONTROL_LINE_MAX)
		return 0; /* the connection layer refuses longer lines before parsing */
	struct fuzz_input in = {data + 1, size - 1};
	bool known = false;
	char *reply = data[0] & 1 ? structured(&in, &known)
				  : control_request_handle(srv, (const char *)in.p, in.n);
	if (!reply)
		abort();
	size_t n = strlen(reply);
	if (n == 0 || reply[n - 1] != '\n' || memchr(reply, '\n', n - 1))
		abort(); /* exactly one line */
	struct json_object *o = control_json_parse_line(reply, n - 1), *ok;
	if (!o || !json_object_object_get_ex(o, "ok", &ok))
		abort(); /* and it is a JSON reply */
	struct json_object *e;
	if (known && json_object_object_get_ex(o, "error", &e) &&
	    !strncmp(json_object_get_string(e), "unknown verb", 12))
		abort();
	json_object_put(o);
	free(reply);
	return 0;
}
