/* The resource table Linux remoteproc reads from the firmware's `.resource_table` section
 * (layout of include/linux/remoteproc.h): a trace buffer and one rpmsg virtio device with two
 * vrings. On the emulated core nothing reads it (the UART carries the messages), but the
 * device's firmware check requires it of every real-time app, and the same ELF on a real
 * board gets its rpmsg channel from it. */

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

#define RSC_TRACE 2u
#define RSC_VDEV 3u
#define VIRTIO_ID_RPMSG 7u
/* VIRTIO_RPMSG_F_NS: the firmware announces its endpoints by name. */
#define VIRTIO_RPMSG_F_NS (1u << 0)
/* Let the host choose where the vrings go. */
#define FW_RSC_ADDR_ANY 0xFFFFFFFFu
#define VRING_ALIGN 16u
#define VRING_BUFFERS 8u

struct fw_rsc_trace {
    uint32_t type;
    uint32_t da;
    uint32_t len;
    uint32_t reserved;
    uint8_t name[32];
};

struct fw_rsc_vdev_vring {
    uint32_t da;
    uint32_t align;
    uint32_t num;
    uint32_t notifyid;
    uint32_t pa;
};

struct fw_rsc_vdev {
    uint32_t type;
    uint32_t id;
    uint32_t notifyid;
    uint32_t dfeatures;
    uint32_t gfeatures;
    uint32_t config_len;
    uint8_t status;
    uint8_t num_of_vrings;
    uint8_t reserved[2];
    struct fw_rsc_vdev_vring vring[2];
};

struct resource_table {
    uint32_t ver;
    uint32_t num;
    uint32_t reserved[2];
    uint32_t offset[2];
    struct fw_rsc_vdev vdev;
    struct fw_rsc_trace trace;
};

_Static_assert(offsetof(struct resource_table, vdev) == 24, "entries follow the offsets");
_Static_assert(sizeof(struct fw_rsc_vdev) == 24 + 4 + 2 * 20, "vdev entry as remoteproc.h");
_Static_assert(sizeof(struct fw_rsc_trace) == 48, "trace entry as remoteproc.h");

__attribute__((section(".resource_table"), used)) const struct resource_table resource_table = {
    .ver = 1,
    .num = 2,
    .offset = {offsetof(struct resource_table, vdev), offsetof(struct resource_table, trace)},
    .vdev =
        {
            .type = RSC_VDEV,
            .id = VIRTIO_ID_RPMSG,
            .notifyid = 0,
            .dfeatures = VIRTIO_RPMSG_F_NS,
            .num_of_vrings = 2,
            .vring =
                {
                    {.da = FW_RSC_ADDR_ANY, .align = VRING_ALIGN, .num = VRING_BUFFERS, .notifyid = 0},
                    {.da = FW_RSC_ADDR_ANY, .align = VRING_ALIGN, .num = VRING_BUFFERS, .notifyid = 1},
                },
        },
    .trace =
        {
            .type = RSC_TRACE,
            .da = (uint32_t)trace_buffer,
            .len = TRACE_BUFFER_LEN,
            .name = "rt-echo-c",
        },
};
