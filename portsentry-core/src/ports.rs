//! [`PortSet`]: a set of TCP or UDP ports, one bit per port.

/// A set of ports, stored as a 65 536-bit bitmap (8 KiB), so membership is one load.
///
/// # Examples
///
/// ```
/// use portsentry_core::PortSet;
/// let mut set = PortSet::new();
/// set.insert(22);
/// assert!(set.contains(22));
/// assert!(!set.contains(23));
/// assert_eq!(set.len(), 1);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet {
    words: Box<[u64; 1024]>,
}

impl PortSet {
    /// An empty set.
    pub fn new() -> Self {
        Self {
            words: Box::new([0; 1024]),
        }
    }

    /// Adds `port`; returns true when it was not yet present.
    pub fn insert(&mut self, port: u16) -> bool {
        let (word, bit) = Self::slot(port);
        let was = self.words[word] & bit != 0;
        self.words[word] |= bit;
        !was
    }

    /// Removes `port`; returns true when it was present.
    pub fn remove(&mut self, port: u16) -> bool {
        let (word, bit) = Self::slot(port);
        let was = self.words[word] & bit != 0;
        self.words[word] &= !bit;
        was
    }

    /// The ports an advanced mode (`atcp`, `audp`) watches before listening ports are taken
    /// out: every port below `bound` (port 0 included, as PortSentry 1.2 did: a probe of port
    /// 0 is always a scan), minus `exclude`.
    ///
    /// # Examples
    ///
    /// ```
    /// use portsentry_core::PortSet;
    /// let exclude: PortSet = [113].into_iter().collect();
    /// let watched = PortSet::advanced(1024, &exclude);
    /// assert!(watched.contains(0) && watched.contains(1023));
    /// assert!(!watched.contains(113) && !watched.contains(1024));
    /// assert_eq!(watched.len(), 1023);
    /// ```
    pub fn advanced(bound: u16, exclude: &Self) -> Self {
        (0..bound).filter(|&p| !exclude.contains(p)).collect()
    }

    /// True when `port` is in the set.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        let (word, bit) = Self::slot(port);
        self.words[word] & bit != 0
    }

    /// The number of ports in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when the set holds no port.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The ports in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(move |&p| self.contains(p))
    }

    #[inline]
    fn slot(port: u16) -> (usize, u64) {
        (usize::from(port >> 6), 1u64 << (port & 63))
    }
}

impl Default for PortSet {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<u16> for PortSet {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> Self {
        let mut set = Self::new();
        for p in iter {
            set.insert(p);
        }
        set
    }
}

/// Why one entry of a port list was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortEntryProblem {
    /// The entry is empty: two commas in a row, or a comma at the start or the end.
    #[error("empty entry (two commas in a row, or a comma at an end)")]
    Empty,
    /// The entry is neither `N` nor `A-B` with decimal numbers.
    #[error("not a port number or a range A-B")]
    NotANumber,
    /// Port 0 cannot be watched.
    #[error("port 0 is not a valid port (ports are 1-65535)")]
    Zero,
    /// A number above 65 535.
    #[error("port above 65535")]
    TooLarge,
    /// A range whose start is above its end, like `20-10`.
    #[error("reversed range: the start is above the end")]
    ReversedRange,
}

/// One rejected entry of a port list: its 1-based position, its text and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {position} `{text}`: {problem}")]
pub struct BadPortEntry {
    /// Position of the entry in the list, counting from 1.
    pub position: usize,
    /// The entry as written (surrounding whitespace removed).
    pub text: String,
    /// What is wrong with it.
    pub problem: PortEntryProblem,
}

/// The error of [`PortSet::parse`]: every bad entry of the list, in order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortListError {
    /// The list has no entry at all (empty or only whitespace).
    #[error("empty port list: expected ports like \"1,7,512-515\"")]
    EmptyList,
    /// One or more entries are invalid; all of them are listed.
    #[error("{}", join_entries(.0))]
    BadEntries(Vec<BadPortEntry>),
}

fn join_entries(entries: &[BadPortEntry]) -> String {
    let parts: Vec<String> = entries.iter().map(ToString::to_string).collect();
    format!(
        "{} (expected ports 1-65535 or ranges A-B, separated by commas)",
        parts.join("; ")
    )
}

impl PortSet {
    /// Inserts every port of the inclusive range `first..=last` (nothing when `first > last`).
    ///
    /// Whole 64-port words are filled at once, so a range costs at most 1 024 word writes
    /// whatever its width, and [`PortSet::parse`] takes time linear in the text.
    ///
    /// # Examples
    ///
    /// ```
    /// use portsentry_core::PortSet;
    /// let mut set = PortSet::new();
    /// set.insert_range(60, 130);
    /// assert_eq!(set.len(), 71);
    /// assert!(set.contains(60) && set.contains(130) && !set.contains(131));
    /// ```
    pub fn insert_range(&mut self, first: u16, last: u16) {
        if first > last {
            return;
        }
        let (first_word, last_word) = (usize::from(first >> 6), usize::from(last >> 6));
        // Bits from `first`'s position up in its word, and up to `last`'s position in its word.
        let low_mask = u64::MAX << (first & 63);
        let high_mask = u64::MAX >> (63 - (last & 63));
        if first_word == last_word {
            self.words[first_word] |= low_mask & high_mask;
            return;
        }
        self.words[first_word] |= low_mask;
        for word in &mut self.words[first_word + 1..last_word] {
            *word = u64::MAX;
        }
        self.words[last_word] |= high_mask;
    }

    /// Parses a port list as PortSentry writes them: `"1,7,9,512-515"`.
    ///
    /// Entries are single ports (`N`) or inclusive ranges (`A-B`, PortSentry 2.0), separated by
    /// commas. Whitespace around entries is accepted (PortSentry 2.0 accepts `"11, 12"`).
    /// Ports are 1-65535. Unlike PortSentry, every bad entry is an error: none is silently
    /// turned into port 0 or dropped, and there is no limit on the number of entries.
    ///
    /// # Errors
    ///
    /// [`PortListError::EmptyList`] for an empty string, [`PortListError::BadEntries`] listing
    /// every empty entry, non-number, port 0, port above 65 535 and reversed range.
    ///
    /// # Examples
    ///
    /// ```
    /// use portsentry_core::PortSet;
    /// let set = PortSet::parse("1,7, 512-515").unwrap();
    /// assert_eq!(set.len(), 6);
    /// assert_eq!(set.to_string(), "1,7,512-515");
    /// assert!(PortSet::parse("20-10").is_err());
    /// ```
    pub fn parse(list: &str) -> Result<Self, PortListError> {
        if list.trim().is_empty() {
            return Err(PortListError::EmptyList);
        }
        let mut set = Self::new();
        let mut bad = Vec::new();
        for (index, raw) in list.split(',').enumerate() {
            let text = raw.trim();
            match parse_entry(text) {
                Ok((first, last)) => set.insert_range(first, last),
                Err(problem) => bad.push(BadPortEntry {
                    position: index + 1,
                    text: text.to_owned(),
                    problem,
                }),
            }
        }
        if bad.is_empty() {
            Ok(set)
        } else {
            Err(PortListError::BadEntries(bad))
        }
    }

    /// The maximal runs of consecutive ports, in ascending order, as inclusive `(first, last)`.
    pub fn ranges(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        let mut ports = self.iter().peekable();
        std::iter::from_fn(move || {
            let first = ports.next()?;
            let mut last = first;
            while let Some(&next) = ports.peek() {
                if u32::from(next) != u32::from(last) + 1 {
                    break;
                }
                last = next;
                ports.next();
            }
            Some((first, last))
        })
    }
}

fn parse_entry(text: &str) -> Result<(u16, u16), PortEntryProblem> {
    if text.is_empty() {
        return Err(PortEntryProblem::Empty);
    }
    match text.split_once('-') {
        Some((first, last)) => {
            let first = parse_port(first.trim())?;
            let last = parse_port(last.trim())?;
            if first > last {
                Err(PortEntryProblem::ReversedRange)
            } else {
                Ok((first, last))
            }
        }
        None => parse_port(text).map(|port| (port, port)),
    }
}

fn parse_port(text: &str) -> Result<u16, PortEntryProblem> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortEntryProblem::NotANumber);
    }
    // Only digits: a parse failure can only mean the number is too large.
    let value: u32 = text.parse().map_err(|_| PortEntryProblem::TooLarge)?;
    match u16::try_from(value) {
        Ok(0) => Err(PortEntryProblem::Zero),
        Ok(port) => Ok(port),
        Err(_) => Err(PortEntryProblem::TooLarge),
    }
}

/// The canonical list form: ascending, ranges of two or more consecutive ports collapsed to
/// `A-B`, no spaces (`"1,7,512-515"`). An empty set formats as an empty string.
/// [`PortSet::parse`] reads it back to an equal set (port 0 excepted, which lists cannot hold).
impl std::fmt::Display for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, (first, last)) in self.ranges().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            if first == last {
                write!(f, "{first}")?;
            } else {
                write!(f, "{first}-{last}")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for PortSet {
    type Err = PortListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn problems(list: &str) -> Vec<(usize, PortEntryProblem)> {
        match PortSet::parse(list) {
            Err(PortListError::BadEntries(bad)) => {
                bad.into_iter().map(|b| (b.position, b.problem)).collect()
            }
            other => panic!("expected bad entries for {list:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_classic_list_and_ranges() {
        let set = PortSet::parse("1,7,9,512-515,540,543-544").unwrap();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [1, 7, 9, 512, 513, 514, 515, 540, 543, 544]
        );
        assert_eq!(
            PortSet::parse("65535").unwrap().iter().collect::<Vec<_>>(),
            [65535]
        );
        assert_eq!(PortSet::parse("5-5").unwrap().len(), 1);
        assert_eq!(PortSet::parse(" 11 , 12 ").unwrap().len(), 2);
        assert_eq!(PortSet::parse("1-65535").unwrap().len(), 65535);
    }

    #[test]
    fn rejects_every_bad_entry_at_once() {
        assert_eq!(
            problems("0,1,70000,abc,20-10,,5-x,-3"),
            [
                (1, PortEntryProblem::Zero),
                (3, PortEntryProblem::TooLarge),
                (4, PortEntryProblem::NotANumber),
                (5, PortEntryProblem::ReversedRange),
                (6, PortEntryProblem::Empty),
                (7, PortEntryProblem::NotANumber),
                (8, PortEntryProblem::NotANumber),
            ]
        );
        assert_eq!(problems("1,2,"), [(3, PortEntryProblem::Empty)]);
        assert_eq!(problems("+5"), [(1, PortEntryProblem::NotANumber)]);
        assert_eq!(
            problems("99999999999999999999"),
            [(1, PortEntryProblem::TooLarge)]
        );
        assert_eq!(PortSet::parse(""), Err(PortListError::EmptyList));
        assert_eq!(PortSet::parse("  "), Err(PortListError::EmptyList));
    }

    #[test]
    fn error_message_names_entry_and_expectation() {
        let message = PortSet::parse("1,20-10").unwrap_err().to_string();
        assert!(
            message.contains("entry 2 `20-10`: reversed range"),
            "{message}"
        );
        assert!(message.contains("expected ports 1-65535"), "{message}");
    }

    #[test]
    fn formats_canonically() {
        let set: PortSet = [5, 1, 2, 3, 9, 65535, 65534].into_iter().collect();
        assert_eq!(set.to_string(), "1-3,5,9,65534-65535");
        assert_eq!(PortSet::new().to_string(), "");
    }

    #[test]
    fn whole_range_lists_parse() {
        // 10 000 full ranges (the issue's reproduction used 100 000: 17.6 s before word
        // filling; see benches for the speed figure).
        let list = vec!["1-65535"; 10_000].join(",");
        let set = PortSet::parse(&list).unwrap();
        assert_eq!(set.len(), 65_535);
        assert!(!set.contains(0));
        let mut edges = PortSet::new();
        edges.insert_range(63, 64);
        edges.insert_range(65_535, 65_535);
        edges.insert_range(0, 0);
        assert_eq!(edges.iter().collect::<Vec<_>>(), [0, 63, 64, 65_535]);
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(ports in proptest::collection::btree_set(1u16.., 1..200)) {
            let set: PortSet = ports.iter().copied().collect();
            let text = set.to_string();
            let back = PortSet::parse(&text).unwrap();
            prop_assert_eq!(&back, &set);
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn ranges_round_trip(ranges in proptest::collection::vec((1u16.., 0u16..300), 1..20)) {
            let text: Vec<String> = ranges
                .iter()
                .map(|&(a, len)| format!("{a}-{}", a.saturating_add(len)))
                .collect();
            let set = PortSet::parse(&text.join(",")).unwrap();
            let mut expected = PortSet::new();
            for &(a, len) in &ranges {
                expected.insert_range(a, a.saturating_add(len));
            }
            prop_assert_eq!(&set, &expected);
            prop_assert_eq!(PortSet::parse(&set.to_string()).unwrap(), set);
        }

        #[test]
        fn insert_range_sets_exactly_the_range(first in any::<u16>(), last in any::<u16>(), seed in any::<u16>()) {
            let mut fast = PortSet::new();
            fast.insert(seed);
            fast.insert_range(first, last);
            let mut one_by_one = PortSet::new();
            one_by_one.insert(seed);
            for port in first..=last {
                one_by_one.insert(port);
            }
            prop_assert_eq!(fast, one_by_one);
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = PortSet::parse(&text);
        }
    }
}
