//! The resets-and-unlocks chart: a server-rendered SVG bar chart (no script, no inline style).
//! Readable without colour: unlocks are hatched, resets solid, the legend says which is which,
//! and the axes carry dates and counts.

use super::DayCount;

/// What the chart's words are, in the page's language.
pub struct ChartText<'a> {
    pub title: &'a str,
    pub resets: &'a str,
    pub unlocks: &'a str,
}

/// Stacked bars per day (resets, then unlocks), with the largest day's total as the scale.
pub fn daily_chart_svg(days: &[DayCount], text: &ChartText) -> String {
    let (w, h) = (640.0_f64, 200.0_f64);
    let (left, right, top, bottom) = (32.0_f64, 12.0_f64, 34.0_f64, 28.0_f64);
    let max = days.iter().map(|d| d.resets + d.unlocks).max().unwrap_or(0).max(1);
    let bar = (w - left - right) / days.len().max(1) as f64;
    let base = h - bottom;
    let scale = |n: i64| n as f64 / max as f64 * (base - top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" class=\"chart\">",
        escape(text.title)
    );
    svg.push_str(
        "<defs><pattern id=\"hatch\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"4\" height=\"4\" fill=\"#fff\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"4\" stroke=\"#7a4b00\" stroke-width=\"2.5\"/></pattern></defs>",
    );
    // Legend: a solid and a hatched square, each with its words.
    svg.push_str(&format!(
        "<rect x=\"{left}\" y=\"6\" width=\"12\" height=\"12\" fill=\"#0b4f8a\"/>\
         <text x=\"{}\" y=\"16\" font-size=\"11\" fill=\"#1d2430\">{}</text>\
         <rect x=\"{}\" y=\"6\" width=\"12\" height=\"12\" fill=\"url(#hatch)\" stroke=\"#7a4b00\"/>\
         <text x=\"{}\" y=\"16\" font-size=\"11\" fill=\"#1d2430\">{}</text>",
        left + 16.0,
        escape(text.resets),
        left + 200.0,
        left + 216.0,
        escape(text.unlocks)
    ));
    // Axes: counts on the left (0 and the largest day), dates below (every seventh day and the last).
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#5b6472\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{base}\" stroke=\"#5b6472\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\" fill=\"#1d2430\">{max}</text>\
         <text x=\"{}\" y=\"{base}\" font-size=\"10\" text-anchor=\"end\" fill=\"#1d2430\">0</text>",
        w - right,
        left - 4.0,
        top + 4.0,
        left - 4.0,
    ));
    let last = days.len().saturating_sub(1);
    for (i, d) in days.iter().enumerate() {
        let x = left + i as f64 * bar + 1.0;
        let (r, u) = (scale(d.resets), scale(d.unlocks));
        let date = date_of(d.day);
        if d.resets > 0 {
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{r:.1}\" fill=\"#0b4f8a\"><title>{date}: {} {}</title></rect>",
                base - r,
                bar - 2.0,
                d.resets,
                escape(text.resets)
            ));
        }
        if d.unlocks > 0 {
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{u:.1}\" fill=\"url(#hatch)\" stroke=\"#7a4b00\"><title>{date}: {} {}</title></rect>",
                base - r - u,
                bar - 2.0,
                d.unlocks,
                escape(text.unlocks)
            ));
        }
        if i % 7 == 0 || i == last {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#1d2430\">{}</text>",
                x + bar / 2.0,
                h - 10.0,
                date.get(5..).unwrap_or_default()
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A day since the epoch as `2026-11-30`.
fn date_of(day: i64) -> String {
    jiff::Timestamp::from_second(day * 86400)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_told_apart_without_colour_and_the_axes_have_dates_and_counts() {
        // 2026-11-01 is day 20758.
        let days: Vec<DayCount> = (0..30)
            .map(|i| DayCount { day: 20758 + i, resets: i64::from(i == 2) * 2, unlocks: i64::from(i == 3) * 3 })
            .collect();
        let text =
            ChartText { title: "Återställningar", resets: "Återställda lösenord", unlocks: "Upplåsta konton" };
        let svg = daily_chart_svg(&days, &text);
        assert_eq!(svg.matches("<title>").count(), 2, "one bar for the resets, one for the unlocks");
        assert!(svg.contains("fill=\"url(#hatch)\""), "unlocks are hatched");
        assert!(
            svg.contains(">Återställda lösenord</text>") && svg.contains(">Upplåsta konton</text>"),
            "a legend in words"
        );
        assert!(svg.contains("<title>2026-11-04: 3 Upplåsta konton</title>"));
        assert!(svg.contains(">11-01</text>") && svg.contains(">11-30</text>"), "dated axis");
        assert!(svg.contains(">3</text>"), "the scale's top");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
