//! The server-side framebuffer: XRGB8888 pixels plus per-tile change generations.
//!
//! Several clients watch one framebuffer, each having seen it at a different moment, so instead
//! of one dirty bitmap per client every 16x16 tile records the generation at which it last
//! changed. A client remembers the generation of its last update; the tiles to send are those
//! with a newer generation. That costs one `u64` per tile, whatever the number of clients, and
//! coalesces any number of changes between two updates into one.

use std::sync::atomic::{AtomicU64, Ordering};

/// Tile edge in pixels.
pub const TILE: u16 = 16;

/// Largest framebuffer edge accepted (RFB sizes are `u16`; QEMU's limit is 2560x2560 for VGA).
pub const MAX_DIM: u16 = 8192;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A rectangle in framebuffer coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    /// Left edge.
    pub x: u16,
    /// Top edge.
    pub y: u16,
    /// Width.
    pub w: u16,
    /// Height.
    pub h: u16,
}

impl Rect {
    /// A rectangle.
    pub const fn new(x: u16, y: u16, w: u16, h: u16) -> Rect {
        Rect { x, y, w, h }
    }

    /// True if it covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }

    /// The part of `self` inside a `width` x `height` framebuffer (possibly empty).
    pub fn clip(&self, width: u16, height: u16) -> Rect {
        let x0 = self.x.min(width);
        let y0 = self.y.min(height);
        let x1 = (u32::from(self.x) + u32::from(self.w)).min(u32::from(width)) as u16;
        let y1 = (u32::from(self.y) + u32::from(self.h)).min(u32::from(height)) as u16;
        Rect::new(x0, y0, x1 - x0, y1 - y0)
    }

    /// The smallest rectangle covering both (an empty one is ignored).
    pub fn union(&self, o: &Rect) -> Rect {
        if self.is_empty() {
            return *o;
        }
        if o.is_empty() {
            return *self;
        }
        let x0 = self.x.min(o.x);
        let y0 = self.y.min(o.y);
        let x1 = (u32::from(self.x) + u32::from(self.w)).max(u32::from(o.x) + u32::from(o.w));
        let y1 = (u32::from(self.y) + u32::from(self.h)).max(u32::from(o.y) + u32::from(o.h));
        Rect::new(
            x0,
            y0,
            (x1 - u32::from(x0)).min(u32::from(u16::MAX)) as u16,
            (y1 - u32::from(y0)).min(u32::from(u16::MAX)) as u16,
        )
    }
}

/// An XRGB8888 framebuffer with change tracking.
#[derive(Clone, Debug)]
pub struct Framebuffer {
    id: u64,
    width: u16,
    height: u16,
    pixels: Vec<u32>,
    generation: u64,
    tile_gen: Vec<u64>,
    tiles_x: usize,
    tiles_y: usize,
}

fn tiles(n: u16) -> usize {
    usize::from(n).div_ceil(usize::from(TILE))
}

impl Framebuffer {
    /// A black framebuffer; sizes are clamped to `1..=MAX_DIM`.
    pub fn new(width: u16, height: u16) -> Framebuffer {
        let width = width.clamp(1, MAX_DIM);
        let height = height.clamp(1, MAX_DIM);
        let (tx, ty) = (tiles(width), tiles(height));
        Framebuffer {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            width,
            height,
            pixels: vec![0; usize::from(width) * usize::from(height)],
            generation: 1,
            tile_gen: vec![1; tx * ty],
            tiles_x: tx,
            tiles_y: ty,
        }
    }

    /// A process-unique identity: clients seeing a different id get a full update (for example
    /// after the VMM switches consoles by handing out another framebuffer).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Width in pixels.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u16 {
        self.height
    }

    /// The current generation: bumped by every change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// All pixels, row-major, `0x00RRGGBB`.
    pub fn pixels(&self) -> &[u32] {
        &self.pixels
    }

    /// One row's pixels from `x`, `w` long (clipped).
    pub fn row(&self, x: u16, y: u16, w: u16) -> &[u32] {
        let r = Rect::new(x, y, w, 1).clip(self.width, self.height);
        let start = usize::from(r.y) * usize::from(self.width) + usize::from(r.x);
        &self.pixels[start..start + usize::from(r.w)]
    }

    /// The pixel at (`x`, `y`), or `None` outside.
    pub fn pixel(&self, x: u16, y: u16) -> Option<u32> {
        if x >= self.width || y >= self.height {
            return None;
        }
        Some(self.pixels[usize::from(y) * usize::from(self.width) + usize::from(x)])
    }

    /// Changes the size: contents become black and everything is dirty.
    pub fn resize(&mut self, width: u16, height: u16) {
        let id = self.id;
        let next = self.generation + 1;
        *self = Framebuffer::new(width, height);
        self.id = id;
        self.generation = next;
        self.tile_gen.fill(next);
    }

    /// Marks the tiles covering `r` as changed.
    pub fn mark_dirty(&mut self, r: Rect) {
        let r = r.clip(self.width, self.height);
        if r.is_empty() {
            return;
        }
        self.generation += 1;
        let t = usize::from(TILE);
        let (tx0, ty0) = (usize::from(r.x) / t, usize::from(r.y) / t);
        let tx1 = (usize::from(r.x) + usize::from(r.w)).div_ceil(t);
        let ty1 = (usize::from(r.y) + usize::from(r.h)).div_ceil(t);
        for ty in ty0..ty1 {
            for tx in tx0..tx1 {
                self.tile_gen[ty * self.tiles_x + tx] = self.generation;
            }
        }
    }

    /// Sets one pixel (ignored outside) and marks its tile.
    pub fn set_pixel(&mut self, x: u16, y: u16, xrgb: u32) {
        if x < self.width && y < self.height {
            let i = usize::from(y) * usize::from(self.width) + usize::from(x);
            if self.pixels[i] != xrgb {
                self.pixels[i] = xrgb;
                self.mark_dirty(Rect::new(x, y, 1, 1));
            }
        }
    }

    /// Fills `r` (clipped) with one colour.
    pub fn fill(&mut self, r: Rect, xrgb: u32) {
        let r = r.clip(self.width, self.height);
        for y in r.y..r.y + r.h {
            let s = usize::from(y) * usize::from(self.width) + usize::from(r.x);
            self.pixels[s..s + usize::from(r.w)].fill(xrgb);
        }
        self.mark_dirty(r);
    }

    /// Replaces the whole picture with `src` (row-major, `stride` pixels per row, at least
    /// `width` x `height` of them), marking only the tiles whose pixels actually differ. This is
    /// how a VMM refreshes from guest memory: copy every frame, send only what changed.
    /// Returns false (and changes nothing) if `src` is too short.
    pub fn update_from(&mut self, src: &[u32], stride: usize) -> bool {
        let (w, h) = (usize::from(self.width), usize::from(self.height));
        if stride < w || src.len() < stride * (h - 1) + w {
            return false;
        }
        let t = usize::from(TILE);
        let mut changed = false;
        let next = self.generation + 1;
        for ty in 0..self.tiles_y {
            for tx in 0..self.tiles_x {
                let (x0, x1) = (tx * t, ((tx + 1) * t).min(w));
                let mut tile_changed = false;
                for y in ty * t..((ty + 1) * t).min(h) {
                    let dst = &mut self.pixels[y * w + x0..y * w + x1];
                    let s = &src[y * stride + x0..y * stride + x1];
                    if dst != s {
                        dst.copy_from_slice(s);
                        tile_changed = true;
                    }
                }
                if tile_changed {
                    self.tile_gen[ty * self.tiles_x + tx] = next;
                    changed = true;
                }
            }
        }
        if changed {
            self.generation = next;
        }
        true
    }

    /// Rectangles (merged runs of tiles along each tile row, clipped) changed after generation
    /// `since`. `since == 0` means everything.
    pub fn dirty_since(&self, since: u64) -> Vec<Rect> {
        let t = usize::from(TILE);
        let mut out = Vec::new();
        for ty in 0..self.tiles_y {
            let mut run: Option<usize> = None;
            for tx in 0..=self.tiles_x {
                let dirty = tx < self.tiles_x && self.tile_gen[ty * self.tiles_x + tx] > since;
                match (dirty, run) {
                    (true, None) => run = Some(tx),
                    (false, Some(start)) => {
                        let r = Rect::new(
                            (start * t) as u16,
                            (ty * t) as u16,
                            ((tx - start) * t).min(usize::from(u16::MAX)) as u16,
                            TILE,
                        );
                        out.push(r.clip(self.width, self.height));
                        run = None;
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// True if any tile changed after generation `since`.
    pub fn changed_since(&self, since: u64) -> bool {
        self.generation > since && self.tile_gen.iter().any(|&g| g > since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_and_union() {
        assert_eq!(
            Rect::new(10, 10, 100, 100).clip(50, 40),
            Rect::new(10, 10, 40, 30)
        );
        assert!(Rect::new(60, 0, 10, 10).clip(50, 40).is_empty());
        assert_eq!(
            Rect::new(65535, 65535, 65535, 65535).clip(8, 8),
            Rect::new(8, 8, 0, 0)
        );
        assert_eq!(
            Rect::new(0, 0, 1, 1).union(&Rect::new(10, 10, 5, 5)),
            Rect::new(0, 0, 15, 15)
        );
    }

    #[test]
    fn dirty_tracking() {
        let mut fb = Framebuffer::new(100, 40);
        assert_eq!(fb.dirty_since(0).len(), 3); // three tile rows, all dirty
        let g = fb.generation();
        assert!(!fb.changed_since(g));
        fb.set_pixel(20, 20, 0xffffff);
        assert_eq!(fb.dirty_since(g), vec![Rect::new(16, 16, 16, 16)]);
        let g2 = fb.generation();
        fb.fill(Rect::new(90, 35, 50, 50), 1);
        // Edge tiles are clipped to the framebuffer.
        assert_eq!(fb.dirty_since(g2), vec![Rect::new(80, 32, 20, 8)]);
        // Setting a pixel to its current value changes nothing.
        let g3 = fb.generation();
        fb.set_pixel(20, 20, 0xffffff);
        assert!(!fb.changed_since(g3));
    }

    #[test]
    fn update_from_marks_only_changed_tiles() {
        let mut fb = Framebuffer::new(64, 32);
        let mut src = vec![0u32; 64 * 32];
        let g = fb.generation();
        assert!(fb.update_from(&src, 64));
        assert!(!fb.changed_since(g));
        src[17 * 64 + 40] = 0x123456;
        assert!(fb.update_from(&src, 64));
        assert_eq!(fb.dirty_since(g), vec![Rect::new(32, 16, 16, 16)]);
        assert_eq!(fb.pixel(40, 17), Some(0x123456));
        assert!(!fb.update_from(&src[..100], 64));
    }

    #[test]
    fn resize_keeps_identity_and_dirties_all() {
        let mut fb = Framebuffer::new(32, 32);
        let (id, g) = (fb.id(), fb.generation());
        fb.resize(48, 16);
        assert_eq!((fb.width(), fb.height(), fb.id()), (48, 16, id));
        assert_eq!(fb.dirty_since(g), vec![Rect::new(0, 0, 48, 16)]);
        assert_ne!(Framebuffer::new(1, 1).id(), id);
    }
}
