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
