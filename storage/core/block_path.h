/* Which host files an image may name: backing files, parents, extents, bundle members.
 *
 * An image file is untrusted (a downloaded appliance): were every name it records opened, a
 * backing file "/home/u/.ssh/id_rsa", "../../etc/shadow", a symlink out of its folder, or a VMDK
 * extent "/dev/sda" would hand a host file to the guest. So a path an image names is opened only
 *  - when, symlinks resolved, it lies in the directory of the image that names it (or below) and
 *    is no device node; or
 *  - when the user allowed it: a file the user named (block_path_allow_file: `run --disk`, `img
 *    rebase -b`, the disks minivmm recorded in a VM's state directory) or anything under a
 *    directory the user allowed (block_path_allow_dir: `--allow-backing-path DIR`).
 * The image the caller opens itself is never checked: only the names inside images are. The list
 * is process-wide and thread-safe; vmm/ and tools/ fill it from their command lines.
 */
#ifndef MINIVMM_STORAGE_BLOCK_PATH_H
#define MINIVMM_STORAGE_BLOCK_PATH_H

#include <stdbool.h>

/* Allow `path` (a file) or everything under `dir`, by their real paths; -errno when the path
 * cannot be resolved (it must exist). */
int block_path_allow_file(const char *path);
int block_path_allow_dir(const char *dir);
/* Forget every allowance (tests). */
void block_path_allow_clear(void);

/* May `image` open `path`, which it names as `named` (`what`: "backing file", "extent file"...)?
 * 0 when yes, or when `path` does not exist (opening it fails anyway, with its own message);
 * otherwise -EPERM with a error_set() message naming the image, the name and how to allow it. */
int block_path_check(const char *image, const char *what, const char *named, const char *path);

/* May the image `image` (the path it was opened by) name the file `name` (a qcow2 external data
 * file)? The name is resolved relative to the image's directory; the file must lie inside that
 * directory after realpath() and be a regular file (no device node). With `create`, a file that
 * does not exist yet is allowed when its directory is the image's (or below it). Returns 0 and
 * the resolved path in *path (malloc'ed), or -EPERM / -errno with a one-line message naming the
 * image and the name. The directory rule is block_path_check()'s, so --allow-backing-path
 * applies here too. */
int block_image_path_allowed(const char *image, const char *name, bool create, char **path);

#endif
