/* Device registry and the per-VM list of instances (see device.h). */
#include "devices/device.h"
#include "lib/log.h"
#include "lib/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEVICE_MAX_TYPES 32

static struct device_type registry[DEVICE_MAX_TYPES];
static unsigned nregistry;

void device_register(const struct device_ops *ops, enum device_level level)
{
	/* A constructor cannot fail: a full table is a build error in practice (tests list every
	 * device, so a missing one shows). */
	if (nregistry < DEVICE_MAX_TYPES && level < DEVICE_LEVELS)
		registry[nregistry++] = (struct device_type){ops, level};
	else
		log_error(NULL, "device %s not registered", ops->name);
}

int device_add_verb(const struct device_env *env, const char *verb, const char *usage,
		    device_verb_fn fn, void *opaque)
{
	if (!env->add_verb)
		return 0;
	int r = env->add_verb(env->control, verb, usage, fn, opaque);
	if (r < 0)
		error_set(r, "control verb %s: %s", verb, strerror(-r));
	return r;
}

struct device_instance {
	const struct device_ops *ops;
	void *state;
};

struct devices {
	struct device_instance v[DEVICE_MAX_TYPES];
	unsigned n;
};

int devices_create(struct device_env *env, struct devices **out)
{
	return devices_create_types(registry, nregistry, env, out);
}

int devices_create_types(const struct device_type *types, unsigned ntypes, struct device_env *env,
			 struct devices **out)
{
	struct devices *d = calloc(1, sizeof(*d));
	*out = NULL;
	if (!d)
		return error_set(-ENOMEM, "devices: out of memory");
	for (int level = 0; level < DEVICE_LEVELS; level++) {
		for (unsigned i = 0; i < ntypes && d->n < DEVICE_MAX_TYPES; i++) {
			if (types[i].level != (enum device_level)level)
				continue;
			const struct device_ops *ops = types[i].ops;
			void *state = NULL;
			error_clear();
			int r = ops->create(env, &state);
			if (r < 0) {
				/* Messages that name their file (storage) pass through as they are;
				 * the destroys below must not replace it. */
				char msg[512];
				if (error_recorded())
					snprintf(msg, sizeof(msg), "%s", error_msg());
				else
					snprintf(msg, sizeof(msg), "%s: %s", ops->name,
						 strerror(-r));
				devices_destroy(d);
				return error_set(r, "%s", msg);
			}
			d->v[d->n++] = (struct device_instance){ops, state};
		}
	}
	*out = d;
	return 0;
}

void devices_destroy(struct devices *d)
{
	if (!d)
		return;
	for (unsigned i = d->n; i-- > 0;)
		d->v[i].ops->destroy(d->v[i].state);
	free(d);
}

int devices_quiesce(struct devices *d)
{
	for (unsigned i = 0; i < d->n; i++) {
		if (!d->v[i].ops->quiesce)
			continue;
		int r = d->v[i].ops->quiesce(d->v[i].state);
		if (r < 0)
			return r;
	}
	return 0;
}

void devices_reset(struct devices *d)
{
	for (unsigned i = 0; i < d->n; i++)
		if (d->v[i].ops->reset)
			d->v[i].ops->reset(d->v[i].state);
}

void *devices_find(struct devices *d, const char *name)
{
	for (unsigned i = 0; d && i < d->n; i++)
		if (!strcmp(d->v[i].ops->name, name))
			return d->v[i].state;
	return NULL;
}

const char *devices_name(struct devices *d, unsigned i)
{
	return d && i < d->n ? d->v[i].ops->name : NULL;
}
