//! The guest layout of memory devices, computed once from the configuration with pmem-layout
//! (the same code pmctl uses for sizing), for cold plug and hotplug alike.

use pmem_layout::{DeviceKind, DeviceMemory, MemoryDeviceRequest, NvdimmSplit, nvdimm_split_named};

use crate::objects::{BackendConfig, DeviceConfig};
use crate::{ConfigError, MemoryConfig, VmConfig};

/// Where one memory device sits and how its backend is split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePlan {
    /// The device id (`id=`), or a generated `#devN` for anonymous devices.
    pub id: String,
    /// Whether the id was given by the user.
    pub named: bool,
    pub memdev: String,
    pub slot: u32,
    /// Guest-physical base of the guest-visible range.
    pub gpa: u64,
    /// Guest-visible bytes (pmem part for an NVDIMM, the whole backend for a DIMM).
    pub size: u64,
    /// NVDIMM split (None for pc-dimm).
    pub nvdimm: Option<NvdimmSplit>,
    pub node: u32,
    pub unarmed: bool,
}

/// Creates the device-memory allocator for `-m`.
pub fn device_memory(mem: &MemoryConfig) -> Result<DeviceMemory, ConfigError> {
    // Devices start on 128 MiB memory-block boundaries (see DeviceMemory::with_start_alignment).
    // Slots count memory devices (pc-dimm + nvdimm), as QEMU counts them: the seed's advice to
    // also count the boot RAM would refuse command lines QEMU accepts.
    DeviceMemory::new(mem.size, mem.slots, mem.maxmem)
        .map(|dm| {
            dm.with_start_alignment(pmem_layout::X86_MEMORY_BLOCK)
                .with_slot_rule(pmem_layout::SlotRule::Qemu)
        })
        .map_err(|e| ConfigError::new(format!("-m: {e}")))
}

/// Places one device (cold or hot plug); `index` names anonymous devices.
pub fn plan_device(
    dm: &mut DeviceMemory,
    dev: &DeviceConfig,
    backend: &BackendConfig,
    index: usize,
) -> Result<DevicePlan, ConfigError> {
    let (named, id) = match dev.id() {
        Some(id) => (true, id.to_string()),
        None => (false, format!("#dev{index}")),
    };
    let align = backend.align();
    let (kind, size, split, node, unarmed, slot, addr, driver) = match dev {
        DeviceConfig::Nvdimm(n) => {
            let split = nvdimm_split_named(&backend.id, backend.size, n.label_size, align)
                .map_err(|e| ConfigError::new(format!("-device nvdimm,id={id}: {e}")))?;
            let readonly = matches!(
                backend.kind,
                crate::BackendKind::File { readonly: true, .. }
            );
            if readonly && !n.unarmed {
                return Err(ConfigError::new(format!(
                    "-device nvdimm,id={id}: 'unarmed' property must be 'on' since memdev {} is read-only; add unarmed=on",
                    backend.id
                )));
            }
            (
                DeviceKind::Nvdimm,
                split.pmem_size,
                Some(split),
                n.node,
                n.unarmed,
                n.slot,
                n.addr,
                "nvdimm",
            )
        }
        DeviceConfig::PcDimm(d) => (
            DeviceKind::PcDimm,
            backend.size,
            None,
            d.node,
            false,
            d.slot,
            d.addr,
            "pc-dimm",
        ),
    };
    let req = MemoryDeviceRequest {
        id: id.clone(),
        kind,
        size,
        align,
        slot,
        addr,
    };
    let placed = dm
        .plug(&req)
        .map_err(|e| ConfigError::new(format!("-device {driver},id={id}: {e}")))?;
    Ok(DevicePlan {
        id,
        named,
        memdev: backend.id.clone(),
        slot: placed.slot,
        gpa: placed.gpa,
        size: placed.size,
        nvdimm: split,
        node,
        unarmed,
    })
}

/// Places every cold-plugged device in command-line order (stable: the same command line always
/// gives the same slots, addresses and hence NFIT identities).
pub fn plan_devices(cfg: &VmConfig) -> Result<(DeviceMemory, Vec<DevicePlan>), ConfigError> {
    let mut dm = device_memory(&cfg.memory)?;
    let mut plans = Vec::with_capacity(cfg.devices.len());
    for (i, dev) in cfg.devices.iter().enumerate() {
        let backend = cfg.backend(dev.memdev()).ok_or_else(|| {
            ConfigError::new(format!("-device: memdev '{}' not found", dev.memdev()))
        })?;
        plans.push(plan_device(&mut dm, dev, backend, i)?);
    }
    Ok((dm, plans))
}

#[cfg(test)]
mod tests {
    use crate::{Action, parse_args};

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn cfg(s: &str) -> Result<Box<crate::VmConfig>, crate::ConfigError> {
        match parse_args(&argv(s))? {
            Action::Run(c) => Ok(c),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn seed_example_two_4g_nvdimms_with_2m_labels() {
        let c = cfg("-kernel /proc/self/exe -m 4G,slots=4,maxmem=32G -smp 4 -machine pc,accel=kvm,nvdimm=on -enable-kvm \
            -object memory-backend-file,id=mem1,share,mem-path=/a,size=4G -device nvdimm,memdev=mem1,id=nv1,label-size=2M \
            -object memory-backend-file,id=mem2,share,mem-path=/b,size=4G -device nvdimm,memdev=mem2,id=nv2,label-size=2M")
        .unwrap();
        let (_, plans) = super::plan_devices(&c).unwrap();
        assert_eq!(plans.len(), 2);
        // 4 GiB RAM: 3 GiB below 4G, 1 GiB above; window at align_up(5 GiB, 1 GiB).
        assert_eq!(plans[0].gpa, 5 << 30);
        assert_eq!(plans[0].size, (4 << 30) - (2 << 20));
        assert_eq!(plans[0].nvdimm.unwrap().label_offset, (4 << 30) - (2 << 20));
        assert_eq!((plans[0].slot, plans[1].slot), (0, 1));
        assert!(plans[1].gpa >= plans[0].gpa + plans[0].size);
        assert_eq!(
            plans[1].gpa % (128 << 20),
            0,
            "devices start on memory-block boundaries"
        );
        // Same command line, same layout.
        let (_, again) = super::plan_devices(&c).unwrap();
        assert_eq!(plans, again);
    }

    #[test]
    fn checks_name_the_option() {
        let base = "-kernel /proc/self/exe -machine pc,nvdimm=on -object memory-backend-file,id=m,mem-path=/a,size=1G";
        let err = |extra: &str| cfg(&format!("{base} {extra}")).unwrap_err().to_string();
        assert!(err("-m 512M -device nvdimm,id=n,memdev=m").contains("maxmem"));
        assert!(err("-m 512M,slots=0,maxmem=2G -device nvdimm,id=n,memdev=m").contains("slots"));
        assert!(
            cfg(&format!(
                "{base} -m 512M,slots=1,maxmem=2G -device nvdimm,id=n,memdev=m"
            ))
            .is_ok()
        );
        let two = format!(
            "{base} -object memory-backend-file,id=m2,mem-path=/b,size=1G -m 512M,slots=1,maxmem=4G \
             -device nvdimm,id=n,memdev=m -device nvdimm,id=n2,memdev=m2"
        );
        assert!(
            cfg(&two)
                .unwrap_err()
                .to_string()
                .contains("no free slots available")
        );
        let m = err("-m 512M,slots=2,maxmem=1G -device nvdimm,id=n,memdev=m");
        assert!(m.contains("maxmem") || m.contains("space"), "{m}");
        assert!(
            err("-m 512M,slots=2,maxmem=2G -device nvdimm,id=n,memdev=m,label-size=64K")
                .contains("0x20000")
        );
        assert!(
            cfg(&format!(
                "{base} -m 512M,slots=2,maxmem=2G -device nvdimm,id=n,memdev=m,label-size=128K"
            ))
            .is_ok()
        );
    }
}
