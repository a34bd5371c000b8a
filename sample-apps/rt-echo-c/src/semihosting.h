/* The one semihosting call the firmware makes: SYS_EXIT, to end the emulator with a failure
 * status when the core crashes. QEMU turns ADP_Stopped_RunTimeErrorUnknown into exit
 * status 1 (only ADP_Stopped_ApplicationExit is 0). */
#ifndef RT_ECHO_SEMIHOSTING_H
#define RT_ECHO_SEMIHOSTING_H

#include <stdint.h>

#define SYS_EXIT 0x18u
#define ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN 0x20023u

__attribute__((noreturn)) static inline void semihosting_exit_failure(void)
{
    register uint32_t op __asm__("r0") = SYS_EXIT;
    /* On 32-bit ARM the reason itself is the parameter (no parameter block). */
    register uint32_t reason __asm__("r1") = ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN;
    __asm__ volatile("bkpt 0xab" : "+r"(op) : "r"(reason) : "memory");
    /* Without a debugger or semihosting the call does not return control usefully: stop. */
    for (;;) {
        __asm__ volatile("wfi");
    }
}

#endif
