/* VirtualBox spellings of convert, so that VBoxManage users need nothing new:
 *   minivmm img clonemedium IN OUT [--format VDI|VMDK|VHD|RAW|QCOW2]     (the copy gets a new UUID)
 *   minivmm img convertfromraw IN OUT [--format VDI|VMDK|VHD|RAW|QCOW2]  (IN is read as raw)
 * As VBoxManage, the output format defaults to VDI.
 */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "tools/img.h"
#include "tools/img_convert.h"
#include "lib/uuid.h"

int img_uuid_random(uint8_t uuid[16])
{
	int ret = uuid_random_v4(uuid);
	if (ret < 0)
		return error_set(ret, "cannot get random bytes for a UUID: %s", strerror(-ret));
	return 0;
}

static int img_vbox_main(const char *verb, int argc, char **argv, bool from_raw)
{
	static const struct option longopts[] = {{"format", required_argument, NULL, 'F'},
						 {"variant", required_argument, NULL, 'V'},
						 {0}};
	struct img_convert_args a = {.out_fmt = "vdi",
				     .sparse = 4096,
				     .workers = 8,
				     .in_fmt = from_raw ? "raw" : NULL,
				     .new_uuid = !from_raw,
				     .out_flags = BLOCK_OPEN_CACHE_UNSAFE};
	int c;

	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'F':
			a.out_fmt = img_vbox_format(optarg);
			if (!a.out_fmt)
				return img_usage_fail(
				    verb, "--format takes VDI, VMDK, VHD, RAW or QCOW2");
			break;
		case 'V':
			/* Standard is the only variant: images are created thin. */
			if (strcasecmp(optarg, "Standard"))
				return img_usage_fail(verb, "only --variant Standard is supported");
			break;
		default:
			return img_bad_option(verb, argc, argv);
		}
	}
	if (argc - optind != 2)
		return img_usage_fail(verb, "expects IN and OUT");
	a.in_name = argv[optind];
	a.out_name = argv[optind + 1];
	return img_convert_run(&a);
}

int img_clonemedium_main(int argc, char **argv)
{
	return img_vbox_main("clonemedium", argc, argv, false);
}

int img_convertfromraw_main(int argc, char **argv)
{
	return img_vbox_main("convertfromraw", argc, argv, true);
}
