#include "uart.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))

#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_ENABLE (1u << 0)
#define CTRL_RX_ENABLE (1u << 1)

/* The board's 25 MHz peripheral clock over 115200 baud (the emulator ignores the rate, but a
 * divider below 16 is invalid). */
#define BAUDDIV (25000000u / 115200u)

void uart_init(void)
{
    UART_BAUDDIV = BAUDDIV;
    UART_CTRL = CTRL_TX_ENABLE | CTRL_RX_ENABLE;
    /* QEMU's model does not look at its input again when the receiver is enabled, only when
     * DATA is read: without this read the first byte waits for the emulator's next unrelated
     * wake-up (about a second). */
    (void)UART_DATA;
}

uint8_t uart_read(void)
{
    while (!(UART_STATE & STATE_RX_FULL)) {
    }
    return (uint8_t)UART_DATA;
}

void uart_write(uint8_t byte)
{
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = byte;
}
