//! A minimal server-sent-events reader for the daemon's own state stream: enough of the
//! format (`event:`, `data:`, comments, blank-line framing, CR/LF variants) to follow one
//! event type, fed with arbitrary chunk boundaries.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

#[derive(Default)]
pub struct SseParser {
    buf: String,
    event: String,
    data: Vec<String>,
    /// Bytes of an incomplete UTF-8 sequence split across chunks.
    partial: Vec<u8>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.partial.extend_from_slice(chunk);
        let valid = match std::str::from_utf8(&self.partial) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        let text: Vec<u8> = self.partial.drain(..valid).collect();
        self.buf.push_str(&String::from_utf8_lossy(&text));
        let mut out = Vec::new();
        while let Some(pos) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=pos).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(SseEvent {
                        event: std::mem::take(&mut self.event),
                        data: self.data.join("\n"),
                    });
                    self.data.clear();
                } else {
                    self.event.clear();
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = value.to_owned(),
                "data" => self.data.push(value.to_owned()),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_chunking() {
        let stream = b"event: state\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\n\nevent: state\ndata: x\ndata: y\n\n";
        for split in 1..stream.len() {
            let mut p = SseParser::new();
            let mut got = p.push(&stream[..split]);
            got.extend(p.push(&stream[split..]));
            assert_eq!(
                got,
                vec![
                    SseEvent {
                        event: "state".into(),
                        data: "{\"a\":1}".into()
                    },
                    SseEvent {
                        event: "state".into(),
                        data: "x\ny".into()
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn multibyte_characters_split_across_chunks() {
        let stream = "data: ↔\n\n".as_bytes();
        let mut p = SseParser::new();
        let mut got = p.push(&stream[..7]);
        got.extend(p.push(&stream[7..]));
        assert_eq!(got[0].data, "↔");
    }
}
