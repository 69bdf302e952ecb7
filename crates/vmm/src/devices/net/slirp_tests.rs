//! libslirp on this host (Debian's libslirp0): a DHCP exchange and host forwarding, with the
//! test playing the guest on the device's end of the socket pair.

use super::*;
use crate::devices::net::frame_pair;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A DHCP DISCOVER from `MAC`, as udhcpc sends it (broadcast, UDP 68 -> 67).
fn dhcp_discover() -> Vec<u8> {
    let mut bootp = vec![0u8; 240];
    bootp[0] = 1; // BOOTREQUEST
    bootp[1] = 1; // Ethernet
    bootp[2] = 6;
    bootp[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    bootp[28..34].copy_from_slice(&MAC);
    bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
    bootp.extend_from_slice(&[53, 1, 1, 255]); // DHCPDISCOVER, end
    let udp_len = 8 + bootp.len();
    let mut udp = Vec::new();
    udp.extend_from_slice(&68u16.to_be_bytes());
    udp.extend_from_slice(&67u16.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]); // no UDP checksum
    udp.extend(bootp);
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
    ];
    ip[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend(ip);
    f.extend(udp);
    f
}

/// Reads frames from `fd` for up to 5 s until `want` accepts one.
fn wait_frame(fd: &OwnedFd, mut want: impl FnMut(&[u8]) -> bool) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 70000];
    for _ in 0..500 {
        loop {
            // SAFETY: reads into a live buffer of its length.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let f = &buf[..n as usize];
            if want(f) {
                return Some(f.to_vec());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn send(fd: &OwnedFd, f: &[u8]) {
    // SAFETY: writes from a live slice.
    let n = unsafe { libc::write(fd.as_raw_fd(), f.as_ptr().cast(), f.len()) };
    assert_eq!(n, f.len() as isize);
}

fn is_dhcp_reply(f: &[u8]) -> bool {
    f.len() > 42 + 240 && f[12..14] == [8, 0] && f[23] == 17 && f[34..36] == 67u16.to_be_bytes()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rule(s: &str) -> HostFwd {
    HostFwd::parse(s).unwrap()
}

/// Starts a user network, skipping (with a note) on a host without libslirp.
fn start(cfg: &UserConfig) -> Option<(UserNet, OwnedFd)> {
    if let Err(e) = ffi::lib() {
        eprintln!("skipped: {e}");
        assert!(e.contains("libslirp0"), "the error names the package: {e}");
        return None;
    }
    let (dev, slirp_end) = frame_pair().unwrap();
    Some((UserNet::start("test", slirp_end, cfg).unwrap(), dev))
}

#[test]
fn dhcp_discover_gets_an_offer_of_10_0_2_15_from_10_0_2_2() {
    let Some((_net, dev)) = start(&UserConfig::default()) else {
        return;
    };
    send(&dev, &dhcp_discover());
    let offer = wait_frame(&dev, is_dhcp_reply).expect("a DHCP reply within 5 s");
    let bootp = &offer[42..];
    assert_eq!(bootp[0], 2, "BOOTREPLY");
    assert_eq!(&bootp[4..8], &0x1234_5678u32.to_be_bytes(), "our xid");
    assert_eq!(
        Ipv4Addr::from(<[u8; 4]>::try_from(&bootp[16..20]).unwrap()),
        Ipv4Addr::new(10, 0, 2, 15)
    );
    assert_eq!(&offer[26..30], &[10, 0, 2, 2], "from the gateway");
    // Options: message type OFFER (53 = 2), router 10.0.2.2, DNS 10.0.2.3.
    let opts = &bootp[240..];
    let find = |code: u8| {
        let mut i = 0;
        while i + 1 < opts.len() && opts[i] != 255 {
            if opts[i] == code {
                return Some(opts[i + 2..i + 2 + opts[i + 1] as usize].to_vec());
            }
            i += 2 + opts[i + 1] as usize;
        }
        None
    };
    assert_eq!(find(53), Some(vec![2]));
    assert_eq!(find(3), Some(vec![10, 0, 2, 2]));
    assert_eq!(find(6), Some(vec![10, 0, 2, 3]));
}

#[test]
fn hostfwd_listens_and_forwards_a_connection_to_the_guest() {
    let port = free_port();
    let cfg = UserConfig {
        hostfwd: vec![rule(&format!("tcp:127.0.0.1:{port}-:22"))],
        ..Default::default()
    };
    let Some((net, dev)) = start(&cfg) else {
        return;
    };
    // The guest takes its lease, so slirp knows its MAC.
    send(&dev, &dhcp_discover());
    wait_frame(&dev, is_dhcp_reply).expect("DHCP reply");
    // A host connection becomes a SYN to 10.0.2.15:22.
    let _c = TcpStream::connect(("127.0.0.1", port)).expect("the forwarded port listens");
    let syn = wait_frame(&dev, |f| {
        f.len() >= 54 && f[12..14] == [8, 0] && f[23] == 6 && f[30..34] == [10, 0, 2, 15]
    })
    .expect("a TCP frame for the guest");
    assert_eq!(&syn[0..6], &MAC, "to the guest's MAC");
    assert_eq!(u16::from_be_bytes([syn[36], syn[37]]), 22);
    assert_ne!(syn[47] & 0x02, 0, "SYN");

    // The monitor's hostfwd_remove closes the port, hostfwd_add opens another.
    net.remove_hostfwd(false, Ipv4Addr::LOCALHOST, port)
        .unwrap();
    assert!(
        net.remove_hostfwd(false, Ipv4Addr::LOCALHOST, port)
            .unwrap_err()
            .contains("no host forwarding rule")
    );
    let p2 = free_port();
    net.add_hostfwd(&rule(&format!("tcp:127.0.0.1:{p2}-:80")))
        .unwrap();
    TcpStream::connect(("127.0.0.1", p2)).expect("the added rule listens");
}

#[test]
fn an_occupied_host_port_is_an_error_naming_it() {
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let text = format!("tcp::{port}-:22");
    let cfg = UserConfig {
        hostfwd: vec![rule(&text)],
        ..Default::default()
    };
    if ffi::lib().is_err() {
        return;
    }
    let (_dev, slirp_end) = frame_pair().unwrap();
    let e = UserNet::start("test", slirp_end, &cfg)
        .err()
        .expect("refused");
    assert!(
        e.contains(&format!("'{text}'")) && e.contains(&format!(":{port}")),
        "{e}"
    );
    assert!(
        e.contains("Address already in use") && e.contains("pick another host port"),
        "{e}"
    );
}

#[test]
fn a_guest_that_never_reads_makes_slirp_drop_not_grow() {
    let port = free_port();
    let cfg = UserConfig {
        hostfwd: vec![rule(&format!("udp:127.0.0.1:{port}-:9"))],
        ..Default::default()
    };
    let Some((net, dev)) = start(&cfg) else {
        return;
    };
    send(&dev, &dhcp_discover());
    wait_frame(&dev, is_dhcp_reply).expect("DHCP reply");
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = vec![7u8; 1400];
    // Thousands of datagrams at a guest that reads nothing.
    for _ in 0..3000 {
        let _ = s.send_to(&payload, ("127.0.0.1", port));
    }
    let mut dropped = 0;
    for _ in 0..300 {
        dropped = net.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        dropped > 0,
        "frames beyond the socket's buffer are dropped and counted"
    );
    drop(dev);
}
