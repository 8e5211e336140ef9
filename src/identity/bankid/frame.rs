//! Drawing the frames of the animated QR code, and keeping each (order, second) frame once drawn.
//!
//! Encoding (data, error correction, function patterns) is the `qrcode` crate's. Choosing the mask
//! is done here: the crate scores the eight candidate masks through per-module accessors, which
//! takes about 1.2 ms a frame, more than everything else together. Scoring the same ISO/IEC 18004
//! rules over a plain grid picks the same mask (a test checks this against the crate) in a small
//! fraction of that. The SVG is one path of horizontal runs rather than one square per module.

use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::{Color, EcLevel, bits, ec};

use super::flow::{BINDING, LIFETIME};
use super::{BankIdFlows, qr_payload};
use crate::session::is_bound;
use crate::storage::StorageError;

/// The masks in the order the `qrcode` crate tries them (ties go to the first).
const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// Light modules around the code, as the standard asks.
const QUIET_ZONE: usize = 4;
/// Screen pixels per module.
const PIXELS: usize = 5;

/// The modules of `payload`'s QR code (error correction level M), row by row: `true` is dark.
pub fn qr_modules(payload: &str) -> (usize, Vec<bool>) {
    let bits = bits::encode_auto(payload.as_bytes(), EcLevel::M).expect("a BankID payload always fits a QR code");
    let version = bits.version();
    let (data, ecc) = ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M)
        .expect("the version was chosen to hold the data");
    let mut canvas = Canvas::new(version, EcLevel::M);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ecc);
    let width = version.width() as usize;
    let mut best: Option<(u32, Vec<bool>)> = None;
    for mask in MASKS {
        let mut masked = canvas.clone();
        masked.apply_mask(mask);
        let dark: Vec<bool> = masked.into_colors().into_iter().map(|c| c == Color::Dark).collect();
        let score = penalty(width, &dark);
        if best.as_ref().is_none_or(|(lowest, _)| score < *lowest) {
            best = Some((score, dark));
        }
    }
    (width, best.expect("eight masks were scored").1)
}

/// ISO/IEC 18004's mask penalty (rules N1–N4), lower is better.
fn penalty(w: usize, dark: &[bool]) -> u32 {
    if w <= 120 { penalty_by_bits(w, dark) } else { penalty_by_modules(w, dark) }
}

/// The penalty with each row and column as the bits of one integer (codes up to version 26;
/// BankID's frames are version 7).
fn penalty_by_bits(w: usize, dark: &[bool]) -> u32 {
    let mut rows = vec![0u128; w];
    let mut columns = vec![0u128; w];
    for (y, row) in dark.chunks(w).enumerate() {
        for (x, _) in row.iter().enumerate().filter(|(_, d)| **d) {
            rows[y] |= 1 << x;
            columns[x] |= 1 << y;
        }
    }
    let pairs = (1u128 << (w - 1)) - 1;
    let mut score = 0;
    for &line in rows.iter().chain(&columns) {
        // N1: run ends are where a module differs from the next.
        let mut ends = (line ^ (line >> 1)) & pairs;
        let mut start = 0;
        loop {
            let end = if ends == 0 { w } else { ends.trailing_zeros() as usize + 1 };
            let run = (end - start) as u32;
            score += if run >= 5 { run - 2 } else { 0 };
            if ends == 0 {
                break;
            }
            ends &= ends - 1;
            start = end;
        }
        // N3: 1:1:3:1:1 (0b1011101 reads the same both ways) without four light modules beside it.
        for j in 0..w - 6 {
            if (line >> j) & 0x7f == 0b101_1101 {
                let dark_before = line & ((1 << j) - 1) & !((1 << j.saturating_sub(4)) - 1) != 0;
                let dark_after = (line >> (j + 7)) & 0xf != 0;
                if !dark_before || !dark_after {
                    score += 40;
                }
            }
        }
    }
    // N2: 2×2 blocks of one colour.
    for pair in rows.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let same = !(a ^ (a >> 1)) & !(b ^ (b >> 1)) & !(a ^ b) & pairs;
        score += 3 * same.count_ones();
    }
    let dark_count: u32 = rows.iter().map(|r| r.count_ones()).sum();
    score + (dark_count as usize * 200 / dark.len()).abs_diff(100) as u32
}

/// The same penalty module by module, for codes of any size.
fn penalty_by_modules(w: usize, dark: &[bool]) -> u32 {
    let mut columns = vec![false; dark.len()];
    for (i, d) in dark.iter().enumerate() {
        columns[(i % w) * w + i / w] = *d;
    }
    let mut score = 0;
    for line in dark.chunks(w).chain(columns.chunks(w)) {
        score += runs_penalty(line) + finder_penalty(line);
    }
    // N2: each 2×2 block of one colour (overlapping) costs 3.
    for (upper, lower) in dark.chunks(w).zip(dark.chunks(w).skip(1)) {
        for x in 0..w - 1 {
            let c = upper[x];
            if c == upper[x + 1] && c == lower[x] && c == lower[x + 1] {
                score += 3;
            }
        }
    }
    // N4: the further from half dark, the more it costs.
    let dark_count = dark.iter().filter(|d| **d).count();
    score + (dark_count * 200 / dark.len()).abs_diff(100) as u32
}

/// N1: a run of five or more modules of one colour costs 3, plus 1 for each beyond five.
fn runs_penalty(line: &[bool]) -> u32 {
    line.chunk_by(|a, b| a == b).map(|run| if run.len() >= 5 { run.len() as u32 - 2 } else { 0 }).sum()
}

/// N3: dark-light-dark×3-light-dark (a finder's 1:1:3:1:1) without four light modules on one side
/// costs 40.
fn finder_penalty(line: &[bool]) -> u32 {
    const FINDER: [bool; 7] = [true, false, true, true, true, false, true];
    let found = line.windows(7).enumerate().filter(|(j, window)| {
        let j = *j;
        *window == FINDER
            && (!line[j.saturating_sub(4)..j].contains(&true) || !line[j + 7..(j + 11).min(line.len())].contains(&true))
    });
    found.count() as u32 * 40
}

/// Frames of consecutive seconds as one SVG document that shows each for a second (SMIL, no
/// script), the last until the page reloads: the QR code still turns every second for a browser
/// without JavaScript, whose page reloads only every few seconds.
pub fn qr_animation_svg(frames: &[Bytes]) -> String {
    let first = frames.first().map(|f| String::from_utf8_lossy(f).into_owned()).unwrap_or_default();
    // The outer document takes the first frame's size.
    let size = first.split(" viewBox").next().and_then(|head| head.split("<svg ").nth(1)).unwrap_or("");
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" {size}>"#);
    for (i, frame) in frames.iter().enumerate() {
        let frame = String::from_utf8_lossy(frame);
        let Some(rest) = frame.strip_prefix(r#"<svg xmlns="http://www.w3.org/2000/svg" "#) else { continue };
        let Some((attrs, body)) = rest.split_once('>') else { continue };
        let shown = if i == 0 { "visible" } else { "hidden" };
        let _ = write!(svg, r#"<svg visibility="{shown}" {attrs}>"#);
        if i > 0 {
            let _ = write!(svg, r#"<set attributeName="visibility" to="visible" begin="{i}s"/>"#);
        }
        if i + 1 < frames.len() {
            let _ = write!(svg, r#"<set attributeName="visibility" to="hidden" begin="{}s"/>"#, i + 1);
        }
        svg.push_str(body);
    }
    svg.push_str("</svg>");
    svg
}

/// One frame of the animated QR code, as an SVG document.
pub fn qr_svg(payload: &str) -> String {
    let (width, dark) = qr_modules(payload);
    let size = width + 2 * QUIET_ZONE;
    let px = size * PIXELS;
    let mut svg = String::with_capacity(300 + dark.len() * 3);
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{px}" height="{px}" viewBox="0 0 {size} {size}" shape-rendering="crispEdges"><rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d=""##
    );
    for (y, row) in dark.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if !row[x] {
                x += 1;
                continue;
            }
            let start = x;
            while x < width && row[x] {
                x += 1;
            }
            let mut number = itoa::Buffer::new();
            let n = number.format(x - start).to_owned();
            svg.push('M');
            svg.push_str(number.format(start + QUIET_ZONE));
            svg.push(' ');
            svg.push_str(number.format(y + QUIET_ZONE));
            svg.push('h');
            svg.push_str(&n);
            svg.push_str("v1h-");
            svg.push_str(&n);
            svg.push('z');
        }
    }
    svg.push_str(r#""/></svg>"#);
    svg
}

/// Drawn frames by (order, second). A frame changes once a second and is the same for every
/// request in that second, so each is drawn once however often it is fetched (several tabs, a
/// page that polls faster than the code turns, refreshes without JavaScript).
///
/// Bounded by bytes, not entries: 10,000 orders at once draw 10,000 frames a second, and frames of
/// past seconds are never asked for again, so they are the first to go.
///
/// It also keeps what never changes about a pending order (its browser binding, start time and QR
/// secrets), so that serving a frame reads nothing from the database. An order that ends is
/// forgotten here by the instance that sees it end; another instance may go on drawing its frames
/// until the order's lifetime is over, which shows nothing: BankID refuses a finished order's code.
pub struct FrameCache {
    frames: quick_cache::sync::Cache<(String, u64), Bytes, FrameWeight>,
    orders: quick_cache::sync::Cache<String, Arc<PendingOrder>>,
}

/// What the frames of a pending order are drawn from.
pub struct PendingOrder {
    pub binding_hash: String,
    pub started_at: i64,
    pub qr_start_token: String,
    pub qr_start_secret: String,
}

debug_showing!(PendingOrder { started_at });

#[derive(Clone)]
struct FrameWeight;

impl quick_cache::Weighter<(String, u64), Bytes> for FrameWeight {
    fn weight(&self, key: &(String, u64), frame: &Bytes) -> u64 {
        (key.0.len() + frame.len()) as u64
    }
}

/// About what a frame and its key weigh.
const FRAME_BYTES: u64 = 5_000;

impl FrameCache {
    /// A cache holding at most about `max_bytes` of frames.
    pub fn new(max_bytes: u64) -> Self {
        let frames = (max_bytes / FRAME_BYTES).max(16) as usize;
        Self {
            frames: quick_cache::sync::Cache::with_weighter(frames, max_bytes, FrameWeight),
            orders: quick_cache::sync::Cache::new(frames),
        }
    }

    /// A pending order seen before.
    pub fn order(&self, flow_id: &str) -> Option<Arc<PendingOrder>> {
        self.orders.get(flow_id)
    }

    pub fn remember(&self, flow_id: &str, order: PendingOrder) -> Arc<PendingOrder> {
        let order = Arc::new(order);
        self.orders.insert(flow_id.to_string(), order.clone());
        order
    }

    /// The order has ended: draw no more frames for it.
    pub fn forget(&self, flow_id: &str) {
        self.orders.remove(flow_id);
    }

    /// The frame of `order` at `qr_time`, drawn now or taken from the cache. The bytes are shared,
    /// not copied: every request in that second sends the same buffer.
    pub fn frame(&self, order: &str, qr_start_token: &str, qr_start_secret: &str, qr_time: u64) -> Bytes {
        let drawn = self.frames.get_or_insert_with(&(order.to_string(), qr_time), || {
            Ok::<_, Infallible>(Bytes::from(qr_svg(&qr_payload(qr_start_token, qr_start_secret, qr_time))))
        });
        match drawn {
            Ok(frame) => frame,
        }
    }

    /// How many frames are held now.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl BankIdFlows {
    /// The current frame of the animated QR code while the flow waits for a scan: its `qrTime` and
    /// the frame as an SVG document. Reads the database only the first time (see `FrameCache`).
    pub async fn qr_frame(&self, id: &str, binding: &str) -> Result<Option<(u64, bytes::Bytes)>, StorageError> {
        let frames = self.qr_frames(id, binding, 1).await?;
        Ok(frames.and_then(|(qr_time, mut frames)| frames.pop().map(|f| (qr_time, f))))
    }

    /// The current frame and the `count - 1` after it (for a page without JavaScript, which
    /// shows them one a second between reloads).
    pub async fn qr_frames(
        &self,
        id: &str,
        binding: &str,
        count: u64,
    ) -> Result<Option<(u64, Vec<bytes::Bytes>)>, StorageError> {
        let order = match self.frames.order(id) {
            Some(order) => order,
            None => {
                let Some(rec) = self.store.bankid_flow(id).await? else {
                    return Ok(None);
                };
                if rec.state != "pending" {
                    return Ok(None);
                }
                self.frames.remember(
                    id,
                    PendingOrder {
                        binding_hash: rec.binding_hash,
                        started_at: rec.started_at,
                        qr_start_token: rec.qr_start_token,
                        qr_start_secret: rec.qr_start_secret,
                    },
                )
            }
        };
        let elapsed = self.clock.now() - order.started_at;
        if !is_bound(&order.binding_hash, BINDING, binding) || elapsed > LIFETIME {
            return Ok(None);
        }
        let qr_time = elapsed.max(0) as u64;
        let frames = (qr_time..qr_time + count.max(1))
            .map(|t| self.frames.frame(id, &order.qr_start_token, &order.qr_start_secret, t))
            .collect();
        Ok(Some((qr_time, frames)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "67df3917-fa0d-44e5-b327-edcc928297f8";
    const SECRET: &str = "d28db9a7-4cde-429e-a983-359be676944c";

    #[test]
    fn picks_the_same_modules_as_the_qrcode_crate() {
        for qr_time in [0, 1, 2, 7, 29, 30, 99, 100, 1000] {
            for token in [TOKEN, "a", "0123456789abcdef0123456789abcdef"] {
                let payload = qr_payload(token, SECRET, qr_time);
                let reference = qrcode::QrCode::new(payload.as_bytes()).unwrap();
                let (width, dark) = qr_modules(&payload);
                assert_eq!(width, reference.width());
                let expected: Vec<bool> = reference.to_colors().into_iter().map(|c| c == Color::Dark).collect();
                assert!(dark == expected, "different modules for {payload}");
            }
        }
    }

    #[test]
    fn both_ways_of_scoring_agree_on_large_codes_too() {
        for len in [10, 100, 300, 600, 1000, 1500] {
            let payload: String = (0..len).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
            let (width, dark) = qr_modules(&payload);
            let reference = qrcode::QrCode::new(payload.as_bytes()).unwrap();
            let expected: Vec<bool> = reference.to_colors().into_iter().map(|c| c == Color::Dark).collect();
            assert!(dark == expected, "different modules for a payload of {len} bytes (width {width})");
            if width <= 120 {
                assert_eq!(penalty_by_bits(width, &dark), penalty_by_modules(width, &dark));
            }
        }
    }

    #[test]
    fn a_frame_reads_back_as_its_payload() {
        let payload = qr_payload(TOKEN, SECRET, 5);
        let svg = qr_svg(&payload);
        let (width, dark) = qr_modules(&payload);
        let size = width + 2 * QUIET_ZONE;
        assert!(svg.contains(&format!("viewBox=\"0 0 {size} {size}\"")));
        // Paint the path's runs, 4 pixels a module, and read the code as a camera would.
        let mut pixels = vec![255u8; size * size * 16];
        let d = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
        let mut runs = 0;
        for run in d.split('M').filter(|r| !r.is_empty()) {
            let n: Vec<usize> = run
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            for px in n[0] * 4..(n[0] + n[2]) * 4 {
                for py in n[1] * 4..n[1] * 4 + 4 {
                    pixels[py * size * 4 + px] = 0;
                }
            }
            runs += 1;
        }
        assert!(runs < dark.iter().filter(|d| **d).count(), "runs, not one square per module");
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(size * 4, size * 4, |x, y| pixels[y * size * 4 + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0].decode().unwrap().1, payload);
    }

    #[test]
    fn frames_are_drawn_once_per_order_and_second() {
        let cache = FrameCache::new(1_000_000);
        let first = cache.frame("order-1", TOKEN, SECRET, 3);
        assert_eq!(first, qr_svg(&qr_payload(TOKEN, SECRET, 3)));
        let again = cache.frame("order-1", TOKEN, SECRET, 3);
        assert_eq!(first.as_ptr(), again.as_ptr(), "the same second: the same frame, not drawn again");
        assert_ne!(first, cache.frame("order-1", TOKEN, SECRET, 4));
        assert_ne!(first, cache.frame("order-2", TOKEN, "other-secret", 3));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn a_cache_of_no_bytes_still_draws_every_frame() {
        let cache = FrameCache::new(0);
        assert_eq!(cache.frame("order", TOKEN, SECRET, 1), qr_svg(&qr_payload(TOKEN, SECRET, 1)));
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = FrameCache::new(50_000);
        for second in 0..100 {
            cache.frame("order", TOKEN, SECRET, second);
        }
        let frame = cache.frame("order", TOKEN, SECRET, 100).len();
        assert!(cache.len() * frame <= 50_000, "{} frames of {frame} bytes", cache.len());
    }
}
