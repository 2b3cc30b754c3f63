/* Storage pools: named directories that hold a VM's disk images (volumes), as libvirt's `dir`
 * pools and VirtualBox's media folders.
 *
 * A pool is a definition file <config dir>/pools/NAME.json ({"name", "type": "dir", "path"});
 * the config dir is $MINIVMM_CONFIG_DIR, else $XDG_CONFIG_HOME/minivmm, else ~/.config/minivmm.
 * A volume is a file directly in the pool's directory, named by VOL_NAME rules; `POOL/VOL` names
 * it anywhere a disk is named (`--disk pool:POOL/VOL,...`).  Names never hold '/' or start with
 * '.', so a name cannot reach outside the pool's directory.
 */
#ifndef MINIVMM_STORAGE_POOL_H
#define MINIVMM_STORAGE_POOL_H

#include <stddef.h>

#define POOL_NAME_MAX 64
#define VOL_NAME_MAX 200
#define POOL_DISK_PREFIX "pool:" /* --disk pool:POOL/VOL */

/* 0 when name is a valid pool (max POOL_NAME_MAX) or volume (max VOL_NAME_MAX) name: letters,
 * digits, '.', '_', '-', not starting with '.' or '-'; else -EINVAL with a message. */
int pool_name_check(const char *name);
int vol_name_check(const char *name);

/* The directory holding the pool definitions (not created). */
int pool_config_dir(char *buf, size_t len);

/* Define pool name over dir (made absolute; created with its parents when missing). Refused
 * when the name is taken or another pool has the same directory. */
int pool_define(const char *name, const char *dir);
/* Forget the definition (the directory and its files stay). */
int pool_undefine(const char *name);
/* The pool's directory (malloc'ed) from its definition. */
int pool_path(const char *name, char **path);
/* Every defined pool's name, sorted (malloc'ed array of malloc'ed strings). */
int pool_list(char ***names, size_t *count);
void pool_list_free(char **names, size_t count);

/* "POOL/VOL" -> the volume's host path (malloc'ed). The file need not exist. */
int pool_volume_path(const char *spec, char **path);
/* Split "POOL/VOL" into its checked parts (pool and vol are malloc'ed). */
int pool_volume_split(const char *spec, char **pool, char **vol);

/* The format a volume name's extension implies (".qcow2" -> "qcow2", ".vhd" -> "vpc", ".hdd" ->
 * "parallels", ".img"/".raw"/".iso" -> "raw"), NULL when it implies none.  A volume is opened as
 * that format, never probed. */
const char *pool_vol_format(const char *name);

#endif
