//! Letters by post (LC-2) as PDF: an A4 letter in French for a window envelope — the sender,
//! the recipient's name and address where the window is, the date in words ("Le 17 janvier
//! 2027"), the subject, the body, and the letter's reference at the foot of each page for the
//! print service and the support desk.
//!
//! Written with `pdf-writer` and the standard Helvetica (WinAnsi), so no font file ships with
//! Carnet and any reader shows the text; characters WinAnsi lacks print as `?`. Lines are
//! broken with Helvetica's metrics (a table below). Pure: no I/O, no clock.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// A letter's content, already in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Letter {
    /// What shows in the envelope's window: the recipient's name, then the address's lines.
    pub recipient: Vec<String>,
    /// The date in words, e.g. "17 janvier 2027".
    pub date: String,
    pub subject: String,
    /// Paragraphs separated by a blank line; a single line break starts a new line.
    pub body: String,
    /// The letter's reference (the outbox message's id), printed at the foot of each page.
    pub reference: String,
}

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const LEFT: f32 = 62.0;
const RIGHT: f32 = PAGE_W - 62.0;
/// Where a French window envelope (DL, window on the right) shows the address.
const WINDOW_X: f32 = 318.0;
const WINDOW_TOP: f32 = 700.0;
const BODY_TOP: f32 = 560.0;
const BOTTOM: f32 = 80.0;
const SIZE: f32 = 11.0;
const LEADING: f32 = 15.0;

/// The letter as a PDF document.
pub fn pdf(letter: &Letter) -> Vec<u8> {
    let pages = layout(letter);
    let count = pages.len();
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 10;
    let page_refs: Vec<Ref> = (0..count).map(|i| Ref::new(first_page + 2 * i as i32)).collect();
    pdf.catalog(catalog).pages(tree).lang(TextStr("fr-FR"));
    pdf.pages(tree)
        .kids(page_refs.iter().copied())
        .count(count as i32);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(TextStr(&letter.subject))
        .author(TextStr("Carnet"))
        .producer(TextStr("Carnet"));
    for (i, lines) in pages.iter().enumerate() {
        let page_id = page_refs[i];
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        resources
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        resources.finish();
        page.finish();
        let mut c = Content::new();
        for line in lines {
            c.begin_text();
            c.set_font(Name(if line.bold { b"F2" } else { b"F1" }), line.size);
            c.next_line(line.x, line.y);
            c.show(Str(&winansi(&line.text)));
            c.end_text();
        }
        let foot = format!(
            "Référence du courrier : {} — page {}/{}",
            letter.reference,
            i + 1,
            count
        );
        c.begin_text();
        c.set_font(Name(b"F1"), 8.0);
        c.next_line(LEFT, 40.0);
        c.show(Str(&winansi(&foot)));
        c.end_text();
        pdf.stream(content_id, &c.finish().into_vec());
    }
    pdf.finish()
}

/// How many pages the letter takes.
pub fn page_count(letter: &Letter) -> usize {
    layout(letter).len()
}

/// One line placed on a page.
#[derive(Clone, Debug, PartialEq)]
struct Line {
    x: f32,
    y: f32,
    size: f32,
    bold: bool,
    text: String,
}

/// The letter's lines, page by page.
fn layout(letter: &Letter) -> Vec<Vec<Line>> {
    let mut first = vec![
        Line {
            x: LEFT,
            y: 780.0,
            size: 16.0,
            bold: true,
            text: "Carnet".into(),
        },
        Line {
            x: LEFT,
            y: 764.0,
            size: 9.0,
            bold: false,
            text: "Votre espace numérique de santé".into(),
        },
        Line {
            x: LEFT,
            y: 752.0,
            size: 9.0,
            bold: false,
            text: "Service des courriers".into(),
        },
    ];
    let mut y = WINDOW_TOP;
    for (i, r) in letter.recipient.iter().enumerate() {
        for part in wrap(r, RIGHT - WINDOW_X, SIZE, i == 0) {
            first.push(Line {
                x: WINDOW_X,
                y,
                size: SIZE,
                bold: i == 0,
                text: part,
            });
            y -= 14.0;
        }
    }
    first.push(Line {
        x: WINDOW_X,
        y: 610.0,
        size: SIZE,
        bold: false,
        text: format!("Le {}", letter.date),
    });
    let mut pages = vec![first];
    let mut y = BODY_TOP;
    let place = |pages: &mut Vec<Vec<Line>>, y: &mut f32, text: String, bold: bool| {
        if *y < BOTTOM {
            pages.push(Vec::new());
            *y = 780.0;
        }
        if let Some(page) = pages.last_mut() {
            page.push(Line {
                x: LEFT,
                y: *y,
                size: SIZE,
                bold,
                text,
            });
        }
        *y -= LEADING;
    };
    for part in wrap(&format!("Objet : {}", letter.subject), RIGHT - LEFT, SIZE, true) {
        place(&mut pages, &mut y, part, true);
    }
    y -= LEADING;
    let closing = "Le service Carnet";
    for paragraph in letter.body.split("\n\n").chain([closing]) {
        for line in paragraph.lines() {
            for part in wrap(line.trim(), RIGHT - LEFT, SIZE, false) {
                place(&mut pages, &mut y, part, false);
            }
        }
        y -= LEADING / 2.0;
    }
    pages
}

/// Breaks `text` into lines no wider than `width` points (a word longer than a line stands
/// alone on its line). Spaces break; no-break spaces do not.
fn wrap(text: &str, width: f32, size: f32, bold: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        if !current.is_empty() && text_width(&candidate, size, bold) > width {
            lines.push(std::mem::replace(&mut current, word.to_string()));
        } else {
            current = candidate;
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Width of `text` in points in Helvetica (bold: about 5 % wider, enough to never overflow).
fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    let units: u32 = winansi(text).iter().map(|b| u32::from(glyph_width(*b))).sum();
    let factor = if bold { 1.05 } else { 1.0 };
    units as f32 * size / 1000.0 * factor
}

/// Helvetica's advance widths (thousandths of the font size) for the printable ASCII range,
/// from its Adobe font metrics.
const ASCII_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '..'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // '0'..'?'
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // '@'..'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // 'P'..'_'
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // '`'..'o'
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 'p'..'~'
];

/// The width of a WinAnsi byte: an accented letter is as wide as its base letter.
fn glyph_width(b: u8) -> u16 {
    let base = match b {
        32..=126 => b,
        0xC0..=0xC5 => b'A',
        0xC7 => b'C',
        0xC8..=0xCB => b'E',
        0xCC..=0xCF => b'I',
        0xD1 => b'N',
        0xD2..=0xD6 | 0xD8 => b'O',
        0xD9..=0xDC => b'U',
        0xDD => b'Y',
        0xE0..=0xE5 => b'a',
        0xE7 => b'c',
        0xE8..=0xEB => b'e',
        0xEC..=0xEF => b'i',
        0xF1 => b'n',
        0xF2..=0xF6 | 0xF8 => b'o',
        0xF9..=0xFC => b'u',
        0xFD | 0xFF => b'y',
        0xA0 => b' ',
        0x91 | 0x92 => b'\'',
        0xAB | 0xBB => b'n',
        0x8C | 0x97 | 0x85 => return 1000,
        0x9C => return 944,
        0xB0 => return 400,
        0x96 => return 556,
        _ => b'n',
    };
    ASCII_WIDTHS[usize::from(base - 32)]
}

/// `text` in the WinAnsi encoding of the standard fonts (`?` for what it lacks).
fn winansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{00A0}' | '\u{202F}' | '\u{2009}' => 0xA0,
            '\u{00A1}'..='\u{00FF}' => c as u32 as u8,
            '€' => 0x80,
            '…' => 0x85,
            'Œ' => 0x8C,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            'œ' => 0x9C,
            'Ÿ' => 0x9F,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(body: &str) -> Letter {
        Letter {
            recipient: vec![
                "Madame Léa ÉTIENNE".into(),
                "1 place de la Démo".into(),
                "75000 Paris".into(),
            ],
            date: "17 janvier 2027".into(),
            subject: "Votre espace numérique de santé Carnet".into(),
            body: body.into(),
            reference: "0193-abc".into(),
        }
    }

    #[test]
    fn french_letters_are_encoded_for_the_standard_fonts() {
        assert_eq!(
            winansi("é à ç œ €"),
            vec![0xE9, b' ', 0xE0, b' ', 0xE7, b' ', 0x9C, b' ', 0x80]
        );
        assert_eq!(winansi("10\u{202F}h"), vec![b'1', b'0', 0xA0, b'h']);
        assert_eq!(winansi("ł"), vec![b'?']);
    }

    #[test]
    fn lines_never_run_past_the_margin() {
        let words =
            "Un espace numérique de santé a été créé pour vous et chaque accès est tracé. ".repeat(20);
        for line in wrap(&words, RIGHT - LEFT, SIZE, false) {
            assert!(text_width(&line, SIZE, false) <= RIGHT - LEFT, "{line}");
            assert!(!line.starts_with(' ') && !line.ends_with(' '));
        }
        // A word wider than the line stands alone rather than vanishing.
        let long = "x".repeat(200);
        assert_eq!(wrap(&long, 100.0, SIZE, false), vec![long]);
    }

    #[test]
    fn a_long_letter_continues_on_more_pages_and_each_page_is_numbered() {
        let short = layout(&letter("Bonjour,\n\nUne ligne."));
        assert_eq!(short.len(), 1);
        let long = layout(&letter(
            &"Un paragraphe assez long pour remplir des lignes. ".repeat(200),
        ));
        assert!(long.len() > 1);
        for page in &long {
            assert!(page.iter().all(|l| l.y >= BOTTOM - LEADING && l.y <= PAGE_H));
        }
        let long_letter = letter(&"Un paragraphe assez long. ".repeat(400));
        let n = layout(&long_letter).len();
        let bytes = pdf(&long_letter);
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(&format!("/Count {n}")), "{n} pages");
        // The text itself is read back by an independent reader in the print batch's e2e test.
    }
}
