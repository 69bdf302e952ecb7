//! A text console as pixels: a VT100/ANSI byte stream (a guest's serial output, or the human
//! monitor) rendered into a [`Framebuffer`], so VNC can show a guest that has no framebuffer.
//!
//! Terminal state comes from the `vt100` crate (escape parsing, scrolling regions, SGR colours,
//! alternate screen): writing that again would be most of the work and most of the bugs. Glyphs
//! come from `font8x8` (public-domain 8x8 bitmaps, no dependencies, compiled-in tables), drawn
//! with each row doubled into an 8x16 cell so an 80x25 console is 640x400, the proportions of
//! the VGA text mode. Only cells whose character, colours or cursor changed are redrawn, so the
//! framebuffer's dirty tiles follow what the guest printed.

use std::num::NonZeroU16;

use font8x8::legacy::{BASIC_LEGACY, BLOCK_LEGACY, BOX_LEGACY, LATIN_LEGACY};

use crate::framebuffer::{Framebuffer, Rect};

/// Cell width in pixels.
pub const CELL_W: u16 = 8;
/// Cell height in pixels (8x8 glyph rows doubled).
pub const CELL_H: u16 = 16;

/// The 16 VGA text colours, XRGB8888.
pub const VGA_PALETTE: [u32; 16] = [
    0x000000, 0xaa0000, 0x00aa00, 0xaa5500, 0x0000aa, 0xaa00aa, 0x00aaaa, 0xaaaaaa, 0x555555,
    0xff5555, 0x55ff55, 0xffff55, 0x5555ff, 0xff55ff, 0x55ffff, 0xffffff,
];

const DEFAULT_FG: u32 = VGA_PALETTE[7];
const DEFAULT_BG: u32 = VGA_PALETTE[0];

/// The 8x8 bitmap for `c` (bit 0 of each row byte is the leftmost pixel); `?` when the font has
/// no glyph for it.
pub fn glyph(c: char) -> [u8; 8] {
    let u = c as u32;
    match u {
        0x20..=0x7e => BASIC_LEGACY[u as usize],
        0xa0..=0xff => LATIN_LEGACY[(u - 0xa0) as usize],
        0x2500..=0x257f => BOX_LEGACY[(u - 0x2500) as usize],
        0x2580..=0x259f => BLOCK_LEGACY[(u - 0x2580) as usize],
        _ if c.is_whitespace() || u < 0x20 => [0; 8],
        _ => BASIC_LEGACY[usize::from(b'?')],
    }
}

fn xterm_colour(c: vt100::Color, default: u32, bright: bool) -> u32 {
    match c {
        vt100::Color::Default => default,
        vt100::Color::Idx(i) if i < 8 && bright => VGA_PALETTE[usize::from(i) + 8],
        vt100::Color::Idx(i) if i < 16 => VGA_PALETTE[usize::from(i)],
        vt100::Color::Idx(i) if i < 232 => {
            let i = u32::from(i - 16);
            let level = |v: u32| if v == 0 { 0 } else { 55 + 40 * v };
            (level(i / 36) << 16) | (level(i / 6 % 6) << 8) | level(i % 6)
        }
        vt100::Color::Idx(i) => {
            let g = 8 + 10 * u32::from(i - 232);
            (g << 16) | (g << 8) | g
        }
        vt100::Color::Rgb(r, g, b) => (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Drawn {
    ch: char,
    fg: u32,
    bg: u32,
    underline: bool,
    cursor: bool,
}

#[derive(Default)]
struct Bells(u32);

impl vt100::Callbacks for Bells {
    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.0 = self.0.saturating_add(1);
    }
}

/// A terminal whose screen is a framebuffer.
pub struct TextScreen {
    parser: vt100::Parser<Bells>,
    fb: Framebuffer,
    drawn: Vec<Option<Drawn>>,
    cols: u16,
    rows: u16,
}

impl std::fmt::Debug for TextScreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextScreen")
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

/// Largest console accepted, in cells (keeps the framebuffer within [`crate::framebuffer::MAX_DIM`]).
pub const MAX_COLS: u16 = 400;
/// Largest console height in cells.
pub const MAX_ROWS: u16 = 200;

impl TextScreen {
    /// A `cols` x `rows` console (clamped to 1..=[`MAX_COLS`] x 1..=[`MAX_ROWS`]), black.
    pub fn new(cols: u16, rows: u16) -> TextScreen {
        let (cols, rows) = (cols.clamp(1, MAX_COLS), rows.clamp(1, MAX_ROWS));
        let mut t = TextScreen {
            parser: vt100::Parser::new_with_callbacks(nz(rows), nz(cols), 0, Bells::default()),
            fb: Framebuffer::new(cols * CELL_W, rows * CELL_H),
            drawn: vec![None; usize::from(cols) * usize::from(rows)],
            cols,
            rows,
        };
        t.render();
        t
    }

    /// Console size in cells (columns, rows).
    pub fn size(&self) -> (u16, u16) {
        (self.cols, self.rows)
    }

    /// Processes terminal output and redraws the cells it changed.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
        self.render();
    }

    /// Changes the console size; the framebuffer follows (clients see a DesktopSize).
    pub fn resize(&mut self, cols: u16, rows: u16) {
        let (cols, rows) = (cols.clamp(1, MAX_COLS), rows.clamp(1, MAX_ROWS));
        self.parser.screen_mut().set_size(nz(rows), nz(cols));
        self.cols = cols;
        self.rows = rows;
        self.fb.resize(cols * CELL_W, rows * CELL_H);
        self.drawn = vec![None; usize::from(cols) * usize::from(rows)];
        self.render();
    }

    /// The rendered screen.
    pub fn framebuffer(&self) -> &Framebuffer {
        &self.fb
    }

    /// The screen's text, rows separated by newlines (for tests and `screendump`-like uses).
    pub fn contents(&self) -> String {
        self.parser.screen().contents()
    }

    /// Number of BEL characters seen since the last call.
    pub fn take_bells(&mut self) -> u32 {
        std::mem::take(&mut self.parser.callbacks_mut().0)
    }

    fn render(&mut self) {
        let screen = self.parser.screen();
        let (crow, ccol) = screen.cursor_position();
        let show_cursor = !screen.hide_cursor();
        for row in 0..self.rows {
            for col in 0..self.cols {
                let d = match screen.cell(row, col) {
                    Some(cell) => {
                        let bright = cell.bold();
                        let mut fg = xterm_colour(cell.fgcolor(), DEFAULT_FG, bright);
                        let mut bg = xterm_colour(cell.bgcolor(), DEFAULT_BG, false);
                        if bright && fg == DEFAULT_FG {
                            fg = VGA_PALETTE[15];
                        }
                        if cell.inverse() {
                            std::mem::swap(&mut fg, &mut bg);
                        }
                        Drawn {
                            ch: cell.contents().chars().next().unwrap_or(' '),
                            fg,
                            bg,
                            underline: cell.underline(),
                            cursor: show_cursor && (row, col) == (crow, ccol),
                        }
                    }
                    None => Drawn {
                        ch: ' ',
                        fg: DEFAULT_FG,
                        bg: DEFAULT_BG,
                        underline: false,
                        cursor: false,
                    },
                };
                let i = usize::from(row) * usize::from(self.cols) + usize::from(col);
                if self.drawn[i] != Some(d) {
                    self.drawn[i] = Some(d);
                    draw_cell(&mut self.fb, col, row, &d);
                }
            }
        }
    }
}

fn draw_cell(fb: &mut Framebuffer, col: u16, row: u16, d: &Drawn) {
    let (x0, y0) = (col * CELL_W, row * CELL_H);
    fb.fill(Rect::new(x0, y0, CELL_W, CELL_H), d.bg);
    let g = glyph(d.ch);
    for (gy, bits) in g.iter().enumerate() {
        for gx in 0..8u16 {
            if bits & (1 << gx) != 0 {
                fb.set_pixel(x0 + gx, y0 + 2 * gy as u16, d.fg);
                fb.set_pixel(x0 + gx, y0 + 2 * gy as u16 + 1, d.fg);
            }
        }
    }
    if d.underline || d.cursor {
        fb.fill(Rect::new(x0, y0 + CELL_H - 2, CELL_W, 2), d.fg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the cell at (`col`, `row`) shows glyph `c` in `fg` on `bg`, pixel by pixel.
    fn assert_cell(t: &TextScreen, col: u16, row: u16, c: char, fg: u32, bg: u32) {
        let g = glyph(c);
        for y in 0..CELL_H - 2 {
            for x in 0..CELL_W {
                let on = g[usize::from(y / 2)] & (1 << x) != 0;
                let want = if on { fg } else { bg };
                let got = t.framebuffer().pixel(col * CELL_W + x, row * CELL_H + y);
                assert_eq!(
                    got,
                    Some(want),
                    "{c:?} at cell ({col},{row}) pixel ({x},{y})"
                );
            }
        }
    }

    #[test]
    fn golden_login_prompt() {
        let mut t = TextScreen::new(80, 25);
        assert_eq!(
            (t.framebuffer().width(), t.framebuffer().height()),
            (640, 400)
        );
        t.feed(b"\r\nlogin: ");
        for (i, c) in "login:".chars().enumerate() {
            assert_cell(&t, i as u16, 1, c, DEFAULT_FG, DEFAULT_BG);
        }
        // The glyphs are really there (not blank): 'l' has pixels set in its column.
        assert_ne!(glyph('l'), [0; 8]);
        // The cursor is an underline two cells after the colon.
        assert_eq!(
            t.framebuffer().pixel(7 * CELL_W, CELL_H + CELL_H - 1),
            Some(DEFAULT_FG)
        );
        assert_eq!(
            t.framebuffer().pixel(6 * CELL_W, 2 * CELL_H - 1),
            Some(DEFAULT_BG)
        );
        assert!(t.contents().contains("login:"));
    }

    #[test]
    fn colours_and_only_changed_tiles() {
        let mut t = TextScreen::new(80, 25);
        let g = t.framebuffer().generation();
        t.feed(b"\x1b[1;31mA\x1b[0m\x1b[44mB");
        assert_cell(&t, 0, 0, 'A', VGA_PALETTE[9], DEFAULT_BG);
        assert_cell(&t, 1, 0, 'B', DEFAULT_FG, VGA_PALETTE[4]);
        // Two cells, and the cursor (now in the third): only the first two tiles are dirty.
        let dirty = t.framebuffer().dirty_since(g);
        assert_eq!(dirty, vec![Rect::new(0, 0, 32, 16)]);
    }

    #[test]
    fn bells_resize_and_garbage() {
        let mut t = TextScreen::new(10, 3);
        t.feed(b"\x07\x07");
        assert_eq!(t.take_bells(), 2);
        assert_eq!(t.take_bells(), 0);
        t.feed(&(0..=255u8).cycle().take(5000).collect::<Vec<_>>());
        t.resize(20, 5);
        assert_eq!(t.size(), (20, 5));
        assert_eq!(t.framebuffer().width(), 160);
        let t2 = TextScreen::new(0, 60000);
        assert_eq!(t2.size(), (1, MAX_ROWS));
    }
}
