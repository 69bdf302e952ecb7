//! A minimal MC146818 CMOS RTC at ports 0x70/0x71: host wall-clock time in BCD, 24-hour mode,
//! "update in progress" always clear. Without it Linux's rtc_cmos driver reads 0xff, believes an
//! update is always in progress and spends seconds polling at boot.

use crate::bus::BusDevice;

/// CMOS index register + data register.
pub struct Rtc {
    index: u8,
    nvram: [u8; 128],
}

impl Default for Rtc {
    fn default() -> Self {
        Rtc {
            index: 0,
            nvram: [0; 128],
        }
    }
}

fn bcd(v: u64) -> u8 {
    let v = (v % 100) as u8;
    ((v / 10) << 4) | (v % 10)
}

/// Civil date from days since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe as i64 + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl Rtc {
    fn register(&self, index: u8, now: u64) -> u8 {
        let secs = now % 86_400;
        let days = (now / 86_400) as i64;
        let (y, m, d) = civil_from_days(days);
        match index {
            0x00 => bcd(secs % 60),
            0x02 => bcd(secs / 60 % 60),
            0x04 => bcd(secs / 3600),
            0x06 => ((days + 4).rem_euclid(7) + 1) as u8, // 1970-01-01 was a Thursday (5)
            0x07 => bcd(d),
            0x08 => bcd(m),
            0x09 => bcd(y.rem_euclid(100) as u64),
            0x0a => 0x26,                  // 32.768 kHz, 1024 Hz; UIP clear
            0x0b => 0x02,                  // 24-hour, BCD, no interrupts
            0x0c => 0x00,                  // no interrupt flags
            0x0d => 0x80,                  // valid RAM and time
            0x32 => bcd((y / 100) as u64), // century
            i => self.nvram[usize::from(i & 0x7f)],
        }
    }
}

impl BusDevice for Rtc {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        if offset == 1
            && let Some(b) = data.first_mut()
        {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            *b = self.register(self.index, now);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&v) = data.first() else { return };
        match offset {
            0 => self.index = v & 0x7f, // bit 7 is the NMI mask
            1 if self.index > 0x0d && self.index != 0x32 => self.nvram[usize::from(self.index)] = v,
            _ => {} // time set by the guest is not kept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instant_in_bcd() {
        // 2026-11-22 04:28:45 UTC
        let t = 1_795_321_725u64;
        let rtc = Rtc::default();
        let r = |i| rtc.register(i, t);
        assert_eq!(
            (r(0x32), r(0x09), r(0x08), r(0x07)),
            (0x20, 0x26, 0x11, 0x22)
        );
        assert_eq!((r(0x04), r(0x02), r(0x00)), (0x04, 0x28, 0x45));
        assert_eq!(r(0x06), 1); // a Sunday
        assert_eq!(r(0x0a) & 0x80, 0);
    }

    #[test]
    fn hostile_index_is_masked() {
        let mut rtc = Rtc::default();
        rtc.write(0, &[0xff]);
        rtc.write(1, &[0x42]);
        let mut b = [0u8];
        rtc.read(1, &mut b);
        assert_eq!(b, [0x42]);
    }
}
