//! The live call panel on a terminal: a ratatui inline viewport under the
//! scrolling log (so messages and warnings stay readable above it), redrawn
//! once a second.

use std::io::Stderr;

use parley_client::call::stats::LiveStats;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::layout::Constraint;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};

/// Rows of the panel, borders included.
const HEIGHT: u16 = 12;

/// The panel, drawn on standard error.
pub struct Panel {
    terminal: Terminal<CrosstermBackend<Stderr>>,
    title: String,
}

impl Panel {
    /// Opens the panel for a call with `peer`.
    pub fn start(peer: &str) -> std::io::Result<Self> {
        let terminal = Terminal::with_options(
            CrosstermBackend::new(std::io::stderr()),
            TerminalOptions {
                viewport: Viewport::Inline(HEIGHT),
            },
        )?;
        Ok(Self {
            terminal,
            title: format!(" call with {peer} - Ctrl-C hangs up "),
        })
    }

    /// Redraws with the latest statistics.
    pub fn draw(&mut self, stats: &LiveStats) {
        let title = self.title.clone();
        let _ = self.terminal.draw(|frame| render(frame, &title, stats));
    }

    /// Prints a line above the panel.
    pub fn status(&mut self, line: String) {
        let _ = self.terminal.insert_before(1, |buf| {
            Paragraph::new(line).render(buf.area, buf);
        });
    }
}

/// Draws the panel (also used to show it as text).
pub fn render(frame: &mut Frame, title: &str, stats: &LiveStats) {
    let rows = stats.rows().into_iter().map(|(label, value)| {
        Row::new(vec![
            Line::from(label).style(Style::default().add_modifier(Modifier::BOLD)),
            Line::from(value),
        ])
    });
    let table = Table::new(rows, [Constraint::Length(22), Constraint::Min(20)]).block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!("{title}- {:.0} s ", stats.elapsed_s)),
    );
    frame.render_widget(table, frame.area());
}

/// The panel as plain text, `width` columns wide (for logs and notes).
pub fn as_text(title: &str, stats: &LiveStats, width: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(width, HEIGHT);
    let mut terminal = Terminal::new(backend).expect("a test backend always opens");
    terminal
        .draw(|frame| render(frame, title, stats))
        .expect("drawing into memory cannot fail");
    let buffer = terminal.backend().buffer();
    let area = terminal.backend().size().expect("test backend size");
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
