//! The resource table Linux remoteproc reads from the firmware's `.resource_table` section
//! (layout of `include/linux/remoteproc.h`): one rpmsg virtio device with two vrings. On the
//! emulated core nothing reads it (the UART carries the messages), but the device's firmware
//! check requires it of every real-time app, and the same ELF on a real board gets its rpmsg
//! channel from it. `memory.x` places the section in a loaded segment.

const RSC_VDEV: u32 = 3;
const VIRTIO_ID_RPMSG: u32 = 7;
/// `VIRTIO_RPMSG_F_NS`: the firmware announces its endpoints by name.
const VIRTIO_RPMSG_F_NS: u32 = 1 << 0;
/// Let the host choose where the vrings go.
const FW_RSC_ADDR_ANY: u32 = u32::MAX;
const VRING_ALIGN: u32 = 16;
const VRING_BUFFERS: u32 = 8;

#[repr(C)]
struct Vring {
    da: u32,
    align: u32,
    num: u32,
    notifyid: u32,
    pa: u32,
}

#[repr(C)]
struct Vdev {
    kind: u32,
    id: u32,
    notifyid: u32,
    dfeatures: u32,
    gfeatures: u32,
    config_len: u32,
    status: u8,
    num_of_vrings: u8,
    reserved: [u8; 2],
    vring: [Vring; 2],
}

#[repr(C)]
struct ResourceTable {
    ver: u32,
    num: u32,
    reserved: [u32; 2],
    offset: [u32; 1],
    vdev: Vdev,
}

const fn vring(notifyid: u32) -> Vring {
    Vring {
        da: FW_RSC_ADDR_ANY,
        align: VRING_ALIGN,
        num: VRING_BUFFERS,
        notifyid,
        pa: 0,
    }
}

const _: () = assert!(core::mem::offset_of!(ResourceTable, vdev) == 20);
const _: () = assert!(core::mem::size_of::<Vdev>() == 24 + 4 + 2 * 20);

#[used]
#[link_section = ".resource_table"]
static RESOURCE_TABLE: ResourceTable = ResourceTable {
    ver: 1,
    num: 1,
    reserved: [0; 2],
    offset: [core::mem::offset_of!(ResourceTable, vdev) as u32],
    vdev: Vdev {
        kind: RSC_VDEV,
        id: VIRTIO_ID_RPMSG,
        notifyid: 0,
        dfeatures: VIRTIO_RPMSG_F_NS,
        gfeatures: 0,
        config_len: 0,
        status: 0,
        num_of_vrings: 2,
        reserved: [0; 2],
        vring: [vring(0), vring(1)],
    },
};
