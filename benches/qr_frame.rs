//! The cost of one BankID QR frame: the payload (an HMAC), the drawing (QR encoding and SVG), and a
//! frame taken from the (order, second) cache. `cargo bench --bench qr_frame`; figures in
//! docs/benchmarks.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use stjarna::identity::bankid::{FrameCache, qr_payload, qr_svg};

const TOKEN: &str = "67df3917-fa0d-44e5-b327-edcc928297f8";
const SECRET: &str = "d28db9a7-4cde-429e-a983-359be676944c";
const ORDER: &str = "0f7d5bba-1a3c-4d1c-9d7e-0c6f0a3f9b11";

fn frames(c: &mut Criterion) {
    c.bench_function("qr payload (HMAC-SHA256)", |b| b.iter(|| qr_payload(black_box(TOKEN), black_box(SECRET), 7)));
    let payload = qr_payload(TOKEN, SECRET, 7);
    c.bench_function("qr frame drawn (encode + SVG)", |b| b.iter(|| qr_svg(black_box(&payload))));
    let cache = FrameCache::new(16_000_000);
    cache.frame(ORDER, TOKEN, SECRET, 7);
    c.bench_function("qr frame from the cache", |b| b.iter(|| cache.frame(black_box(ORDER), TOKEN, SECRET, 7)));
    // 10,000 orders each in a new second: every frame is a miss, as when 10,000 users wait at once.
    let orders: Vec<String> = (0..10_000).map(|i| format!("order-{i}")).collect();
    let mut second = 0;
    c.bench_function("qr frame, cache miss among 10,000 orders", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            for i in 0..iters {
                let order = &orders[(i % 10_000) as usize];
                if i % 10_000 == 0 {
                    second += 1;
                }
                black_box(cache.frame(order, TOKEN, SECRET, second));
            }
            start.elapsed()
        })
    });
}

criterion_group!(benches, frames);
criterion_main!(benches);
