//! The protocol engine byte by byte: handshakes for each version and security type, pixel
//! conversion on the wire, incremental updates, resize, and hostile input.

use proptest::prelude::*;
use rfb::auth::vnc_auth_response;
use rfb::session::{ENC_DESKTOP_SIZE, ENC_QEMU_EXT_KEY};
use rfb::{
    ClientEvent, Framebuffer, PixelFormat, ProtocolError, Rect, Session, SessionConfig, Version,
};

const CHALLENGE: [u8; 16] = *b"fedcba9876543210";

fn cfg(password: Option<&str>) -> SessionConfig {
    SessionConfig {
        name: "test".into(),
        password: password.map(|p| p.as_bytes().to_vec()),
        challenge: CHALLENGE,
        max_cut_text: 16,
        refuse: None,
    }
}

fn server_init(w: u16, h: u16) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&PixelFormat::XRGB8888.to_bytes());
    v.extend_from_slice(&[0, 0, 0, 4]);
    v.extend_from_slice(b"test");
    v
}

/// A session past the handshake (3.8, no auth), output drained.
fn ready(fb: &Framebuffer) -> Session {
    let mut s = Session::new(cfg(None), fb.width(), fb.height());
    let ev = s.feed(b"RFB 003.008\n\x01\x01").unwrap();
    assert_eq!(ev, vec![ClientEvent::Ready { shared: true }]);
    s.take_output();
    s
}

fn update_request(incremental: bool, r: Rect) -> Vec<u8> {
    let mut m = vec![3, u8::from(incremental)];
    for v in [r.x, r.y, r.w, r.h] {
        m.extend_from_slice(&v.to_be_bytes());
    }
    m
}

fn set_encodings(encs: &[i32]) -> Vec<u8> {
    let mut m = vec![2, 0];
    m.extend_from_slice(&(encs.len() as u16).to_be_bytes());
    for e in encs {
        m.extend_from_slice(&e.to_be_bytes());
    }
    m
}

fn set_pixel_format(f: &PixelFormat) -> Vec<u8> {
    let mut m = vec![0, 0, 0, 0];
    m.extend_from_slice(&f.to_bytes());
    m
}

/// Parses a FramebufferUpdate of Raw/pseudo rectangles: (rect, encoding, pixel bytes).
fn parse_update(u: &[u8], bpp: usize) -> Vec<(Rect, i32, Vec<u8>)> {
    assert_eq!(u[0], 0);
    let n = u16::from_be_bytes([u[2], u[3]]) as usize;
    let mut p = 4;
    let mut out = Vec::new();
    for _ in 0..n {
        let g = |i: usize| u16::from_be_bytes([u[p + i], u[p + i + 1]]);
        let r = Rect::new(g(0), g(2), g(4), g(6));
        let enc = i32::from_be_bytes([u[p + 8], u[p + 9], u[p + 10], u[p + 11]]);
        p += 12;
        let len = if enc == 0 {
            r.w as usize * r.h as usize * bpp
        } else {
            0
        };
        out.push((r, enc, u[p..p + len].to_vec()));
        p += len;
    }
    assert_eq!(p, u.len(), "trailing bytes in update");
    out
}

#[test]
fn handshake_38_none() {
    let mut s = Session::new(cfg(None), 640, 480);
    assert_eq!(s.take_output(), b"RFB 003.008\n");
    s.feed(b"RFB 003.008\n").unwrap();
    assert_eq!(s.take_output(), [1, 1]);
    s.feed(&[1]).unwrap();
    assert_eq!(s.take_output(), [0, 0, 0, 0]);
    let ev = s.feed(&[0]).unwrap();
    assert_eq!(ev, vec![ClientEvent::Ready { shared: false }]);
    assert_eq!(s.take_output(), server_init(640, 480));
    assert_eq!(s.version(), Some(Version::V3_8));
}

#[test]
fn handshake_37_and_33_none() {
    let mut s = Session::new(cfg(None), 8, 8);
    s.take_output();
    s.feed(b"RFB 003.007\n\x01").unwrap();
    // 3.7 has no SecurityResult after None.
    assert_eq!(s.take_output(), [1, 1]);
    s.feed(&[1]).unwrap();
    assert_eq!(s.take_output(), server_init(8, 8));

    let mut s = Session::new(cfg(None), 8, 8);
    s.take_output();
    s.feed(b"RFB 003.003\n").unwrap();
    // 3.3: the server decides, as a u32.
    assert_eq!(s.take_output(), [0, 0, 0, 1]);
    s.feed(&[1]).unwrap();
    assert_eq!(s.take_output(), server_init(8, 8));
    // Other 3.x minors (3.5, Apple's 3.889) are treated as 3.3, as the RFC says.
    let mut s = Session::new(cfg(None), 8, 8);
    s.feed(b"RFB 003.005\n").unwrap();
    assert_eq!(s.version(), Some(Version::V3_3));
    let mut s = Session::new(cfg(None), 8, 8);
    s.feed(b"RFB 003.889\n").unwrap();
    assert_eq!(s.version(), Some(Version::V3_3));
}

#[test]
fn vnc_auth_success_and_failure() {
    for (version, pw, ok) in [
        (&b"RFB 003.008\n"[..], "secret", true),
        (b"RFB 003.008\n", "wrong", false),
        (b"RFB 003.003\n", "secret", true),
        (b"RFB 003.003\n", "wrong", false),
        (b"RFB 003.007\n", "wrong", false),
    ] {
        let mut s = Session::new(cfg(Some("secret")), 8, 8);
        s.take_output();
        s.feed(version).unwrap();
        let mut want = if version == b"RFB 003.003\n" {
            vec![0, 0, 0, 2]
        } else {
            s.take_output();
            s.feed(&[2]).unwrap();
            vec![]
        };
        want.extend_from_slice(&CHALLENGE);
        assert_eq!(s.take_output(), want);
        let r = s.feed(&vnc_auth_response(pw.as_bytes(), &CHALLENGE));
        if ok {
            r.unwrap();
            assert_eq!(s.take_output(), [0, 0, 0, 0]);
            s.feed(&[1]).unwrap();
            assert!(s.is_ready());
        } else {
            assert_eq!(r, Err(ProtocolError::AuthFailed));
            let out = s.take_output();
            assert_eq!(&out[..4], [0, 0, 0, 1]);
            if version == b"RFB 003.008\n" {
                assert_eq!(&out[8..], b"authentication failed");
            } else {
                assert_eq!(out.len(), 4, "no reason before 3.8");
            }
            assert!(s.is_closed());
            assert_eq!(s.feed(&[1]), Err(ProtocolError::Closed));
        }
    }
}

#[test]
fn bad_version_security_choice_and_refusal() {
    let mut s = Session::new(cfg(None), 8, 8);
    assert!(matches!(
        s.feed(b"GET / HTTP/1.1\r\n"),
        Err(ProtocolError::BadVersion(_))
    ));
    let mut s = Session::new(cfg(None), 8, 8);
    assert!(s.feed(b"RFB 004.000\n").is_err());

    let mut s = Session::new(cfg(Some("x")), 8, 8);
    s.take_output();
    assert_eq!(
        s.feed(b"RFB 003.008\n\x01"),
        Err(ProtocolError::BadSecurityType(1))
    );
    let out = s.take_output();
    assert_eq!(&out[2..6], [0, 0, 0, 1]);

    let mut c = cfg(None);
    c.refuse = Some("busy".into());
    let mut s = Session::new(c, 8, 8);
    s.take_output();
    assert!(matches!(
        s.feed(b"RFB 003.008\n"),
        Err(ProtocolError::Refused(_))
    ));
    assert_eq!(s.take_output(), [0, 0, 0, 0, 4, b'b', b'u', b's', b'y']);
}

#[test]
fn full_update_in_several_pixel_formats() {
    let mut fb = Framebuffer::new(5, 3);
    for y in 0..3 {
        for x in 0..5 {
            fb.set_pixel(
                x,
                y,
                0x0010_2030 * u32::from(x + 1) + 0x0101_0101 * u32::from(y),
            );
        }
    }
    let be565 = PixelFormat {
        big_endian: true,
        ..PixelFormat::RGB565
    };
    let bgr888 = PixelFormat {
        red_shift: 0,
        blue_shift: 16,
        big_endian: true,
        ..PixelFormat::XRGB8888
    };
    for fmt in [
        PixelFormat::XRGB8888,
        PixelFormat::RGB565,
        be565,
        PixelFormat::BGR233,
        bgr888,
    ] {
        let mut s = ready(&fb);
        s.feed(&set_pixel_format(&fmt)).unwrap();
        s.feed(&update_request(false, Rect::new(1, 1, 100, 100)))
            .unwrap();
        let u = s.build_update(&fb).unwrap();
        let rects = parse_update(&u, fmt.bytes_per_pixel());
        assert_eq!(rects.len(), 1);
        let (r, enc, px) = &rects[0];
        assert_eq!(
            (*r, *enc),
            (Rect::new(1, 1, 4, 2), 0),
            "request clipped to the screen"
        );
        // Reference: independent per-pixel conversion.
        let mut want = Vec::new();
        for y in 1..3 {
            for x in 1..5 {
                let p = fb.pixel(x, y).unwrap();
                let c = |v: u32, max: u16| {
                    (f64::from(v & 0xff) * f64::from(max) / 255.0).round() as u32
                };
                let v = (c(p >> 16, fmt.red_max) << fmt.red_shift)
                    | (c(p >> 8, fmt.green_max) << fmt.green_shift)
                    | (c(p, fmt.blue_max) << fmt.blue_shift);
                let bytes = v.to_le_bytes();
                let mut b = bytes[..fmt.bytes_per_pixel()].to_vec();
                if fmt.big_endian {
                    b.reverse();
                }
                want.extend(b);
            }
        }
        assert_eq!(px, &want, "{fmt:?}");
    }
}

#[test]
fn incremental_update_sends_only_dirty_tiles() {
    let mut fb = Framebuffer::new(64, 48);
    let mut s = ready(&fb);
    s.feed(&update_request(true, Rect::new(0, 0, 64, 48)))
        .unwrap();
    // First update after connecting is full even if incremental (new framebuffer for it).
    let u = s.build_update(&fb).unwrap();
    assert_eq!(parse_update(&u, 4)[0].0, Rect::new(0, 0, 64, 48));
    // Nothing changed: an incremental request waits.
    s.feed(&update_request(true, Rect::new(0, 0, 64, 48)))
        .unwrap();
    assert!(s.build_update(&fb).is_none());
    assert!(s.update_requested());
    fb.set_pixel(20, 40, 0xff0000);
    fb.set_pixel(63, 0, 0x00ff00);
    let u = s.build_update(&fb).unwrap();
    let rects: Vec<Rect> = parse_update(&u, 4).iter().map(|r| r.0).collect();
    assert_eq!(
        rects,
        vec![Rect::new(48, 0, 16, 16), Rect::new(16, 32, 16, 16)]
    );
    // Served: no request pending any more.
    fb.set_pixel(0, 0, 1);
    assert!(s.build_update(&fb).is_none());
    // A request for a sub-region only gets the changed part inside it.
    s.feed(&update_request(true, Rect::new(0, 0, 8, 8)))
        .unwrap();
    let u = s.build_update(&fb).unwrap();
    assert_eq!(parse_update(&u, 4)[0].0, Rect::new(0, 0, 8, 8));
    // A change outside the requested region is not lost: it is sent when a request covers it.
    // (The tile at 0,0 is owed too: only 8x8 of it went out above.)
    fb.set_pixel(60, 40, 2);
    s.feed(&update_request(true, Rect::new(16, 0, 16, 16)))
        .unwrap();
    assert!(
        s.build_update(&fb).is_none(),
        "nothing changed inside the region"
    );
    fb.set_pixel(17, 1, 3);
    let u = s.build_update(&fb).unwrap();
    assert_eq!(parse_update(&u, 4)[0].0, Rect::new(16, 0, 16, 16));
    s.feed(&update_request(true, Rect::new(0, 0, 64, 48)))
        .unwrap();
    let u = s.build_update(&fb).unwrap();
    let rects: Vec<Rect> = parse_update(&u, 4).iter().map(|r| r.0).collect();
    assert_eq!(
        rects,
        vec![Rect::new(0, 0, 64, 48)],
        "owed tiles, as one bounding box"
    );
    s.feed(&update_request(true, Rect::new(0, 0, 64, 48)))
        .unwrap();
    assert!(s.build_update(&fb).is_none(), "nothing owed any more");
    // Non-incremental: sent even though nothing changed.
    s.feed(&update_request(false, Rect::new(10, 10, 1, 1)))
        .unwrap();
    assert!(s.build_update(&fb).is_some());
}

#[test]
fn requests_coalesce() {
    let fb = Framebuffer::new(64, 64);
    let mut s = ready(&fb);
    s.build_update(&fb);
    for i in 0..1000u16 {
        s.feed(&update_request(true, Rect::new(i % 50, 3, 1, 1)))
            .unwrap();
    }
    s.feed(&update_request(false, Rect::new(2, 2, 1, 1)))
        .unwrap();
    let u = s.build_update(&fb).unwrap();
    assert_eq!(parse_update(&u, 4)[0].0, Rect::new(0, 2, 50, 2));
    assert!(s.build_update(&fb).is_none());
}

#[test]
fn resize_with_and_without_desktop_size() {
    let mut fb = Framebuffer::new(32, 32);
    let mut with = ready(&fb);
    with.feed(&set_encodings(&[5, 0, ENC_DESKTOP_SIZE, 7]))
        .unwrap();
    let mut without = ready(&fb);
    without.feed(&set_encodings(&[0])).unwrap();
    for s in [&mut with, &mut without] {
        s.feed(&update_request(false, Rect::new(0, 0, 32, 32)))
            .unwrap();
        s.build_update(&fb).unwrap();
        s.feed(&update_request(true, Rect::new(0, 0, 32, 32)))
            .unwrap();
    }
    fb.resize(48, 16);
    let u = with.build_update(&fb).unwrap();
    assert_eq!(
        parse_update(&u, 4),
        vec![(Rect::new(0, 0, 48, 16), ENC_DESKTOP_SIZE, vec![])]
    );
    assert_eq!(with.size(), (48, 16));
    with.feed(&update_request(true, Rect::new(0, 0, 48, 16)))
        .unwrap();
    let u = with.build_update(&fb).unwrap();
    assert_eq!(parse_update(&u, 4)[0].0, Rect::new(0, 0, 48, 16));

    // Without DesktopSize the client keeps its size and gets the overlap.
    let u = without.build_update(&fb).unwrap();
    assert_eq!(parse_update(&u, 4)[0].0, Rect::new(0, 0, 32, 16));
    assert_eq!(without.size(), (32, 32));
    // ...and afterwards only changes, not the overlap again and again.
    without
        .feed(&update_request(true, Rect::new(0, 0, 32, 32)))
        .unwrap();
    assert!(without.build_update(&fb).is_none());
    fb.set_pixel(40, 0, 5); // outside its view: never sent
    fb.set_pixel(1, 1, 5);
    let u = without.build_update(&fb).unwrap();
    assert_eq!(parse_update(&u, 4)[0].0, Rect::new(0, 0, 16, 16));
    // The DesktopSize client, no change pending, waits.
    with.feed(&update_request(true, Rect::new(0, 0, 48, 16)))
        .unwrap();
    fb.set_pixel(47, 15, 9);
    let u = with.build_update(&fb).unwrap();
    let rects: Vec<Rect> = parse_update(&u, 4).iter().map(|r| r.0).collect();
    assert_eq!(
        rects,
        vec![Rect::new(0, 0, 16, 16), Rect::new(32, 0, 16, 16)]
    );
}

#[test]
fn events_and_qemu_extended_keys() {
    let fb = Framebuffer::new(8, 8);
    let mut s = ready(&fb);
    let ev = s
        .feed(&[4, 1, 0, 0, 0, 0, 0, 0x61, 5, 3, 0, 10, 0, 20])
        .unwrap();
    assert_eq!(
        ev,
        vec![
            ClientEvent::Key {
                down: true,
                keysym: 0x61,
                scancode: None
            },
            ClientEvent::Pointer {
                buttons: 3,
                x: 10,
                y: 20
            },
        ]
    );
    s.feed(&set_encodings(&[ENC_QEMU_EXT_KEY])).unwrap();
    let ack = s.take_output();
    assert_eq!(
        parse_update(&ack, 4),
        vec![(Rect::new(0, 0, 8, 8), ENC_QEMU_EXT_KEY, vec![])]
    );
    let ev = s
        .feed(&[255, 0, 0, 0, 0, 0, 0xff, 0x52, 0, 0, 0, 0xc8])
        .unwrap();
    assert_eq!(
        ev,
        vec![ClientEvent::Key {
            down: false,
            keysym: 0xff52,
            scancode: Some(0xc8)
        }]
    );
    s.bell();
    s.bell();
    s.server_cut_text(b"0123456789abcdefXYZ");
    let out = s.take_output();
    assert_eq!(&out[..1], [2], "bells coalesce");
    assert_eq!(&out[1..9], [3, 0, 0, 0, 0, 0, 0, 16], "cut text capped");
    assert_eq!(out.len(), 9 + 16);
}

#[test]
fn cut_text_is_capped_and_skipped_without_buffering() {
    let fb = Framebuffer::new(8, 8);
    let mut s = ready(&fb);
    // Fits: delivered, even when split across feeds.
    s.feed(&[6, 0, 0, 0, 0, 0, 0, 5, b'h', b'e']).unwrap();
    assert_eq!(
        s.feed(b"llo").unwrap(),
        vec![ClientEvent::CutText(b"hello".to_vec())]
    );
    // Claims 4 GiB: skipped as it streams in; the next message still parses.
    s.feed(&[6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).unwrap();
    let chunk = vec![b'x'; 1 << 16];
    for _ in 0..16 {
        assert!(s.feed(&chunk).unwrap().is_empty());
    }
    // A long one that ends: skipped, then the key after it arrives.
    let mut s = ready(&fb);
    let mut m = vec![6, 0, 0, 0, 0, 0, 0, 100];
    m.extend(vec![b'y'; 100]);
    m.extend([4, 1, 0, 0, 0, 0, 0, 0x62]);
    assert_eq!(
        s.feed(&m).unwrap(),
        vec![ClientEvent::Key {
            down: true,
            keysym: 0x62,
            scancode: None
        }]
    );
}

#[test]
fn hostile_pixel_formats_and_messages_close() {
    let fb = Framebuffer::new(8, 8);
    for f in [
        PixelFormat {
            bits_per_pixel: 24,
            ..PixelFormat::XRGB8888
        },
        PixelFormat {
            bits_per_pixel: 0,
            ..PixelFormat::XRGB8888
        },
        PixelFormat {
            red_max: 0,
            ..PixelFormat::XRGB8888
        },
        PixelFormat {
            true_colour: false,
            ..PixelFormat::BGR233
        },
        PixelFormat {
            blue_shift: 200,
            ..PixelFormat::RGB565
        },
    ] {
        let mut s = ready(&fb);
        assert!(matches!(
            s.feed(&set_pixel_format(&f)),
            Err(ProtocolError::BadPixelFormat(_))
        ));
        assert!(s.is_closed());
    }
    let mut s = ready(&fb);
    assert_eq!(s.feed(&[99]), Err(ProtocolError::UnknownMessage(99)));
    let mut s = ready(&fb);
    assert_eq!(s.feed(&[255, 1]), Err(ProtocolError::UnknownQemuMessage(1)));
}

#[test]
fn huge_region_is_clipped() {
    let fb = Framebuffer::new(20, 10);
    let mut s = ready(&fb);
    s.feed(&update_request(false, Rect::new(0, 0, 65535, 65535)))
        .unwrap();
    let u = s.build_update(&fb).unwrap();
    assert_eq!(u.len(), 4 + 12 + 20 * 10 * 4);
    s.feed(&update_request(
        false,
        Rect::new(65000, 65000, 65535, 65535),
    ))
    .unwrap();
    let u = s.build_update(&fb).unwrap();
    assert_eq!(u.len(), 4, "an empty update, nothing outside the screen");
}

fn arb_messages() -> impl Strategy<Value = Vec<u8>> {
    let msg = prop_oneof![
        (any::<bool>(), any::<[u16; 4]>())
            .prop_map(|(i, r)| update_request(i, Rect::new(r[0], r[1], r[2], r[3]))),
        (any::<bool>(), any::<u32>()).prop_map(|(d, k)| {
            let mut m = vec![4, u8::from(d), 0, 0];
            m.extend(k.to_be_bytes());
            m
        }),
        any::<[u8; 5]>().prop_map(|b| vec![5, b[0], b[1], b[2], b[3], b[4]]),
        proptest::collection::vec(any::<i32>(), 0..5).prop_map(|e| set_encodings(&e)),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|t| {
            let mut m = vec![6, 0, 0, 0];
            m.extend((t.len() as u32).to_be_bytes());
            m.extend(t);
            m
        }),
        prop_oneof![
            Just(PixelFormat::RGB565),
            Just(PixelFormat::BGR233),
            Just(PixelFormat::XRGB8888)
        ]
        .prop_map(|f| set_pixel_format(&f)),
    ];
    proptest::collection::vec(msg, 0..30).prop_map(|v| v.concat())
}

proptest! {
    /// However the stream is split, the same events come out.
    #[test]
    fn chunking_does_not_matter(stream in arb_messages(), cut in 1usize..13) {
        let fb = Framebuffer::new(40, 30);
        let mut a = ready(&fb);
        let whole = a.feed(&stream).unwrap();
        let mut b = ready(&fb);
        let mut pieces = Vec::new();
        for c in stream.chunks(cut) {
            pieces.extend(b.feed(c).unwrap());
        }
        prop_assert_eq!(whole, pieces);
        prop_assert_eq!(a.build_update(&fb), b.build_update(&fb));
    }

    /// Random bytes at any stage: no panic, and updates never exceed one screen plus headers.
    #[test]
    fn garbage_never_panics(pre in 0usize..4, data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut fb = Framebuffer::new(40, 30);
        let mut s = Session::new(cfg(Some("pw")), 40, 30);
        let prologue: [&[u8]; 4] = [b"", b"RFB 003.008\n", b"RFB 003.008\n\x02", b"RFB 003.003\n"];
        let _ = s.feed(prologue[pre]);
        for (i, c) in data.chunks(5).enumerate() {
            if s.feed(c).is_err() {
                break;
            }
            fb.set_pixel(i as u16, 0, i as u32);
            if let Some(u) = s.build_update(&fb) {
                // Owed and dirty rectangles may overlap: at most two screens.
                prop_assert!(u.len() <= 4 + 12 * 8 + 2 * 40 * 30 * 4);
            }
        }
    }
}
