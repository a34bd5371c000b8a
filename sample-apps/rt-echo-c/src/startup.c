/* Reset and fault handling for the Cortex-M4 of mps2-an386: the vector table, the reset
 * handler (data copy, bss zeroing, FPU on, then main) and the fault handlers, which end the
 * emulator through semihosting with a failure status so the host sees the core crash. */

#include <stdint.h>
#include <string.h>

#include "semihosting.h"

extern uint32_t _estack;
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;

int main(void);

void Reset_Handler(void);
void HardFault_Handler(void);
void Default_Handler(void);

/* Coprocessor Access Control Register: CP10 and CP11 (the FPU) full access. */
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

__attribute__((noreturn)) void Reset_Handler(void)
{
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
    /* Built for the hard-float ABI: the compiler may use FP registers anywhere. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    main();
    semihosting_exit_failure();
}

/* MemManage, BusFault and UsageFault are not enabled, so every fault escalates here. */
__attribute__((noreturn)) void HardFault_Handler(void)
{
    semihosting_exit_failure();
}

/* No interrupt is enabled: any other exception is a fault too. */
__attribute__((noreturn)) void Default_Handler(void)
{
    semihosting_exit_failure();
}

typedef void (*vector_t)(void);

/* The architecture's 16 entries; the firmware enables no external interrupt. */
__attribute__((section(".vectors"), used)) const vector_t vectors[16] = {
    (vector_t)&_estack, /* initial stack pointer */
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler,
    Default_Handler,   /* MemManage */
    Default_Handler,   /* BusFault */
    Default_Handler,   /* UsageFault */
    0, 0, 0, 0,
    Default_Handler,   /* SVCall */
    Default_Handler,   /* DebugMonitor */
    0,
    Default_Handler,   /* PendSV */
    Default_Handler,   /* SysTick */
};
