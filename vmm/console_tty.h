/* Raw mode for the terminal on stdin while the guest owns it, restored on every way out:
 * normal return, and fatal signals (the handler restores, then re-raises). */
#ifndef MINIVMM_VMM_CONSOLE_TTY_H
#define MINIVMM_VMM_CONSOLE_TTY_H

/* Put `fd` (a tty) in raw mode; no-op returning -ENOTTY for anything else. */
int console_tty_raw(int fd);
void console_tty_restore(void);

#endif
