/* ghostswapd, ghostswapctl: the octal escapes of the kernel's tables
 * (/proc/self/mountinfo, /proc/swaps write a space as \040, a tab as \011,
 * a newline as \012 and a backslash as \134). */
#ifndef GHOSTSWAP_PROC_ESCAPE_H
#define GHOSTSWAP_PROC_ESCAPE_H

/* proc_unescape - undo the octal escapes of @s in place.
 * Context: any.  Return: nothing.
 */
void proc_unescape (char *s);

#endif /* GHOSTSWAP_PROC_ESCAPE_H */
