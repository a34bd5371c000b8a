/* UART0 of mps2-an386: an Arm CMSDK APB UART, polled. */
#ifndef RT_ECHO_UART_H
#define RT_ECHO_UART_H

#include <stdint.h>

void uart_init(void);
/* Waits for a byte and returns it. */
uint8_t uart_read(void);
/* Waits until the transmitter has room, then sends the byte. */
void uart_write(uint8_t byte);

#endif
