//! A VNC server showing a text console, for trying clients against the crate by hand and from
//! `tests/vnc_check.py`: `cargo run -p rfb --example vnc_text -- 127.0.0.1:7 [password]`.
//! Typed keys are echoed on the screen (Enter starts a new line); Ctrl-Alt-N prints a note.

use std::sync::{Arc, Mutex};

use rfb::{Display, Framebuffer, KeyEvent, TextScreen, VncServer, parse_vnc_spec};

struct Console {
    screen: Mutex<TextScreen>,
    server: Mutex<Option<VncServer>>,
}

impl Console {
    fn print(&self, bytes: &[u8]) {
        self.screen.lock().unwrap().feed(bytes);
        if let Some(s) = self.server.lock().unwrap().as_ref() {
            s.notify();
        }
    }
}

impl Display for Console {
    fn with_framebuffer(&self, f: &mut dyn FnMut(&Framebuffer)) {
        f(self.screen.lock().unwrap().framebuffer())
    }

    fn key_event(&self, ev: KeyEvent) {
        if !ev.down {
            return;
        }
        match ev.keysym {
            0x20..=0x7e => self.print(&[ev.keysym as u8]),
            0xff0d => self.print(b"\r\n"),
            0xff08 => self.print(b"\x08 \x08"),
            _ => {}
        }
    }

    fn pointer_event(&self, _buttons: u8, _x: u16, _y: u16) {}

    fn console_switch(&self, n: u8) {
        self.print(format!("\r\n[console {n}]\r\n").as_bytes());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec = args.first().map(String::as_str).unwrap_or("127.0.0.1:7");
    let spec = match parse_vnc_spec(spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vnc_text: {e}");
            std::process::exit(2);
        }
    };
    let console = Arc::new(Console {
        screen: Mutex::new(TextScreen::new(80, 25)),
        server: Mutex::new(None),
    });
    console.print(b"pmvm test console\r\n\r\nlogin: ");
    let server = match VncServer::from_spec(console.clone(), &spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vnc_text: {e}");
            std::process::exit(1);
        }
    };
    server.set_password(args.get(1).map(String::as_str));
    for l in server.listeners() {
        println!("listening on {l}");
    }
    *console.server.lock().unwrap() = Some(server);
    loop {
        std::thread::park();
    }
}
