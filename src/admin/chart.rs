//! The resets-and-unlocks chart: a server-rendered SVG bar chart (no script, no inline style).

use super::DayCount;

/// Stacked bars per day (resets, then unlocks), with the largest day's total as the scale.
pub fn daily_chart_svg(days: &[DayCount], title: &str) -> String {
    let (w, h, pad) = (600.0_f64, 160.0_f64, 20.0_f64);
    let max = days.iter().map(|d| d.resets + d.unlocks).max().unwrap_or(0).max(1) as f64;
    let bar = (w - 2.0 * pad) / days.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" class=\"chart\">",
        escape(title)
    );
    svg.push_str(&format!(
        "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#9aa3ae\"/>",
        h - pad,
        w - pad,
        h - pad
    ));
    for (i, d) in days.iter().enumerate() {
        let x = pad + i as f64 * bar + 1.0;
        let scale = |n: i64| n as f64 / max * (h - 2.0 * pad);
        let (r, u) = (scale(d.resets), scale(d.unlocks));
        let base = h - pad;
        if d.resets > 0 {
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{r:.1}\" fill=\"#0b4f8a\"><title>{} resets</title></rect>",
                base - r,
                bar - 2.0,
                d.resets
            ));
        }
        if d.unlocks > 0 {
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{u:.1}\" fill=\"#f2b01e\"><title>{} unlocks</title></rect>",
                base - r - u,
                bar - 2.0,
                d.unlocks
            ));
        }
    }
    svg.push_str(&format!("<text x=\"{pad}\" y=\"12\" font-size=\"10\" fill=\"#5b6472\">max {max}</text></svg>"));
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_bar_per_kind_and_day_with_counts() {
        let days = [DayCount { day: 1, resets: 2, unlocks: 0 }, DayCount { day: 2, resets: 1, unlocks: 3 }];
        let svg = daily_chart_svg(&days, "Återställningar");
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("<title>3 unlocks</title>") && svg.contains("max 4"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
