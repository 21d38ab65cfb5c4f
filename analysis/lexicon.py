"""Word lists for the behavioural suite and the substitution attack; no downloads.

Our own lists, written for the movie domain. The synonym table has two rings:
`SYNONYMS` holds near-synonyms of the same polarity and strength (the strict
attack's only candidates), `LOOSE` adds weaker or looser neighbours (the lax
attack may also use them). No entry of either may be an antonym of its key
(`ANTONYMS`), which a test checks. A key must keep its meaning wherever it
stands: "like" is not one, since reviews mostly use it as a preposition
("looks like a TV movie"), where "enjoy" would change what the text says.
"""

POSITIVE_ADJECTIVES = (
    'good', 'great', 'excellent', 'wonderful', 'brilliant', 'fantastic',
    'superb', 'amazing', 'beautiful', 'delightful', 'enjoyable', 'moving',
    'charming', 'gripping', 'hilarious', 'outstanding', 'terrific', 'lovely')
NEGATIVE_ADJECTIVES = (
    'bad', 'terrible', 'awful', 'boring', 'dull', 'horrible', 'dreadful',
    'poor', 'tedious', 'weak', 'lousy', 'pointless', 'mediocre', 'clumsy',
    'bland', 'painful', 'forgettable', 'disappointing')
POSITIVE_VERBS = ('loved', 'enjoyed', 'liked', 'adored', 'admired',
                  'appreciated')
NEGATIVE_VERBS = ('hated', 'disliked', 'despised', 'regretted', 'loathed',
                  'resented')
NOUNS = ('movie', 'film', 'story', 'plot', 'acting', 'cast', 'script',
         'ending', 'soundtrack', 'direction', 'dialogue', 'performance')
INTENSIFIERS = ('very', 'really', 'truly', 'incredibly', 'absolutely',
                'extremely', 'remarkably')
PERSON_NAMES = ('John', 'Mary', 'James', 'Linda', 'Robert', 'Patricia',
                'Michael', 'Susan', 'David', 'Karen', 'Ahmed', 'Priya',
                'Wei', 'Olga', 'Carlos', 'Fatima', 'Kenji', 'Amara')
PLACES = ('Paris', 'Texas', 'London', 'Mumbai', 'Lagos', 'Tokyo', 'Ohio',
          'Berlin', 'Toronto', 'Sydney', 'Cairo', 'Lima')
FILMS = ('The Last Harbor', 'Midnight Run', 'Silver Lake', 'Northern Lights',
         'The Quiet Year', 'Glass Houses', 'Open Water', 'Red Desert')
NEUTRAL_SENTENCES = (
    'I watched it on a Tuesday.', 'The film is about two hours long.',
    'It was released in the autumn.', 'I saw it with a friend.',
    'The DVD has subtitles.', 'It was shot in colour.',
    'There is a scene in a kitchen.', 'The cinema was half full.')
POSITIVE_CLOSINGS = ('I absolutely loved it.', 'A wonderful film, highly '
                     'recommended.', 'One of the best movies I have seen.',
                     'Brilliant from start to finish.')
NEGATIVE_CLOSINGS = ('I absolutely hated it.', 'A terrible film, avoid it.',
                     'One of the worst movies I have seen.',
                     'Awful from start to finish.')
# Expanded form -> contraction (INV: both should read the same).
CONTRACTIONS = {'it is': "it's", 'do not': "don't", 'does not': "doesn't",
                'did not': "didn't", 'is not': "isn't", 'was not': "wasn't",
                'I am': "I'm", 'I have': "I've", 'can not': "can't",
                'would not': "wouldn't", 'they are': "they're",
                'there is': "there's", 'that is': "that's"}

SYNONYMS = {
    'good': ('fine', 'solid', 'decent'), 'great': ('terrific', 'superb'),
    'excellent': ('superb', 'outstanding'),
    'wonderful': ('marvelous', 'lovely'), 'brilliant': ('superb', 'masterful'),
    'amazing': ('astonishing', 'incredible'), 'beautiful': ('gorgeous',
                                                           'lovely'),
    'funny': ('amusing', 'humorous'), 'enjoyable': ('entertaining',
                                                    'pleasant'),
    'bad': ('poor', 'lousy'), 'terrible': ('dreadful', 'horrible'),
    'awful': ('dreadful', 'horrible'), 'boring': ('tedious', 'dull'),
    'dull': ('tedious', 'boring'), 'horrible': ('awful', 'dreadful'),
    'stupid': ('dumb', 'idiotic'), 'worst': ('poorest', 'lousiest'),
    'best': ('finest', 'greatest'), 'movie': ('film', 'picture'),
    'film': ('movie', 'picture'), 'story': ('tale', 'narrative'),
    'plot': ('storyline', 'story'), 'acting': ('performances', 'portrayal'),
    'love': ('adore', 'cherish'), 'loved': ('adored', 'cherished'),
    'hate': ('despise', 'loathe'), 'hated': ('despised', 'loathed'),
    'really': ('truly', 'genuinely'),
    'very': ('extremely', 'highly'), 'waste': ('squandering', 'misuse'),
    'perfect': ('flawless', 'ideal'), 'poor': ('weak', 'inferior'),
    'fun': ('entertaining', 'amusing'), 'interesting': ('intriguing',
                                                        'engaging'),
    'beautifully': ('gorgeously', 'exquisitely'), 'worse': ('inferior',
                                                            'poorer'),
    'ridiculous': ('absurd', 'ludicrous'), 'annoying': ('irritating',
                                                       'grating'),
    'mess': ('shambles', 'muddle'),
    'favorite': ('favourite', 'preferred'), 'fantastic': ('fabulous',
                                                          'terrific'),
    'superb': ('excellent', 'splendid'), 'pointless': ('futile',
                                                       'meaningless'),
    'lame': ('feeble', 'weak'), 'weak': ('feeble', 'flimsy'),
    'highly': ('strongly', 'greatly'), 'recommend': ('suggest', 'endorse'),
}
LOOSE = {
    'good': ('okay', 'fair', 'passable'), 'great': ('nice', 'good'),
    'excellent': ('good', 'nice'), 'wonderful': ('nice', 'pleasant'),
    'brilliant': ('clever', 'smart'), 'amazing': ('surprising', 'notable'),
    'bad': ('subpar', 'flawed'), 'terrible': ('bad', 'subpar'),
    'awful': ('bad', 'unpleasant'), 'boring': ('slow', 'quiet'),
    'worst': ('weakest', 'lowest'), 'best': ('top', 'strongest'),
    'love': ('like', 'fancy'), 'loved': ('liked', 'fancied'),
    'hate': ('dislike', 'mind'), 'hated': ('disliked', 'minded'),
    'perfect': ('fine', 'apt'), 'waste': ('use', 'spending'),
    'stupid': ('silly', 'odd'), 'fun': ('light', 'lively'),
    'poor': ('modest', 'plain'), 'worse': ('lesser', 'weaker'),
    'beautiful': ('pretty', 'nice'), 'funny': ('odd', 'quirky'),
}
ANTONYMS = {
    'good': ('bad', 'poor'), 'great': ('awful', 'terrible'),
    'bad': ('good', 'great', 'fine'), 'best': ('worst',),
    'worst': ('best',), 'love': ('hate',), 'loved': ('hated',),
    'hate': ('love',), 'hated': ('loved',), 'boring': ('exciting',
                                                      'interesting'),
    'terrible': ('wonderful', 'excellent'), 'awful': ('wonderful',
                                                      'excellent'),
    'like': ('dislike',), 'poor': ('rich', 'good'), 'worse': ('better',),
    'perfect': ('flawed',), 'fun': ('boring',), 'weak': ('strong',),
}
