"""The exercises: what each teaches, the error its shipped test fails with, its hints.

The files live beside this module, in ``exercises/NN_slug/``: the learner's
module (``slug.py.txt``), its test (``test_slug.py.txt``) and the reference
solution (``solution.py.txt``, never written into a learner's folder). They
are stored as ``.txt`` so that neither pytest, mypy nor a doctest run of this
repository mistakes them for its own code; ``init`` writes them as ``.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

INSTALL_KERAS = "pip install tensorflow keras"
NEEDS_KERAS = f"needs Keras: {INSTALL_KERAS}"
"""Why a Keras exercise is skipped; the exercises' tests say the same."""

ARTICLE = "docs/article.md in the pitfalls repository"


@dataclass(frozen=True, kw_only=True)
class Exercise:
    """One exercise: a buggy module, the test that fails on it, three hints and a lesson."""

    number: int
    slug: str
    """The module's name; the folder is ``NN_slug``, the test ``test_slug.py``."""
    title: str
    pitfall: str
    """The README's name for the pitfall it teaches."""
    error: str
    """The ``PitfallError`` subclass the shipped test fails with, by its public name."""
    needs_keras: bool
    symptom: str
    """Hint 1: what the failure says, in words."""
    cause: str
    """Hint 2: why it happens."""
    fix: str
    """Hint 3: the change that fixes it."""
    explanation: str
    """Shown once it passes: what was wrong, and where it bites in real training."""
    failure_hint: str = ""
    """The hint the test's failure shows in place of the checker's, where that one,
    written for every project, would mislead in this exercise (``_hints.exercise_hint``)."""

    @property
    def folder(self) -> str:
        return f"{self.number:02d}_{self.slug}"

    @property
    def module_file(self) -> str:
        return f"{self.slug}.py"

    @property
    def test_file(self) -> str:
        return f"test_{self.slug}.py"

    @property
    def hints(self) -> tuple[str, str, str]:
        return (self.symptom, self.cause, self.fix)

    def _read(self, name: str) -> str:
        path = resources.files("pitfalls._learn") / "exercises" / self.folder / name
        return path.read_text(encoding="utf-8")

    def shipped_module(self) -> str:
        """The module as the learner gets it, buggy."""
        return self._read(self.module_file + ".txt")

    def shipped_test(self) -> str:
        """The test as shipped; ``status`` compares the learner's copy with it."""
        return self._read(self.test_file + ".txt")

    def solution(self) -> str:
        """The reference solution: the shipped module with the smallest fix."""
        return self._read("solution.py.txt")


EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        number=1,
        slug="shared_buffer",
        title="a batch generator that re-yields one numpy buffer",
        pitfall="the article's generator re-yielding one buffer",
        error="TargetMismatchError",
        needs_keras=False,
        symptom=(
            "The checker drew 16 batches and held on to all of them, as a prefetching"
            " consumer does. When each batch was yielded its targets were the mean of its"
            " inputs; after later draws they no longer were (the findings say 'after later"
            " draws'). Something changes a batch after it was handed out."
        ),
        cause=(
            "`x` is allocated once, before `while True:`, and refilled in place with"
            " `x[:] = ...`: every batch is the same array. `y` is a new array each time,"
            " so it keeps its own batch's means. A consumer holding batch 0 when batch 1 is"
            " drawn sees batch 1's inputs beside batch 0's targets."
        ),
        fix=(
            "Allocate `x` inside the loop: move `x = np.zeros((batch_size, 2))` below"
            " `while True:` (or yield `x.copy()`). The numbers stay the same; only their"
            " memory changes."
        ),
        explanation=(
            "The generator re-yielded one numpy buffer and refilled it in place, so a batch"
            " changed after it was handed out. It bites every consumer that holds more than"
            " one batch: Keras 2's queue (max_queue_size=10), tf.data's prefetch, Keras 3's"
            " fit keeping the first two batches to infer shapes, a queue of workers. The"
            " article's loss stalled at ~415; on today's stack the damage depends on thread"
            " timing, which is why the guard is a test on the generator, not on the loss curve."
        ),
    ),
    Exercise(
        number=2,
        slug="articles_fix",
        title='the article\'s "fix", which shares its target buffer too',
        pitfall="the article's false fix sharing input and target buffers",
        error="AliasingError",
        needs_keras=False,
        symptom=(
            "Held batches changed after later draws, inputs and targets alike, yet every"
            " pair stays consistent: `assert_targets_match` alone would pass. The message's"
            " 'Memory:' lines say all 16 batches share one buffer, refilled in place."
        ),
        cause=(
            "Both `x` and `y` are allocated once and overwritten together. Every yield hands"
            " out the same two arrays, so every batch a consumer holds turns into the newest"
            " one, and a consumer that reads in the middle of a refill gets a torn batch."
        ),
        fix=(
            "Allocate both inside the loop: delete the two `np.zeros` lines and, inside"
            " `while True:`, write"
            " `x = rng.integers(0, 100, size=(batch_size, 2)).astype(np.float64)` and"
            " `y = (x[:, 0] + x[:, 1]) / 2`."
        ),
        explanation=(
            "The article's 'fix' kept pairs consistent by overwriting inputs and targets"
            " together, but still aliased its two buffers. A read-ahead consumer trains on"
            " repeated copies of the newest batch, and on torn batches when it reads"
            " mid-refill: through Keras 3's fit we measured 981 of 1000 batches trained on"
            " torn pairs, final loss 663, worse than the article's first generator. Checking"
            " targets cannot see it; checking that held batches never change can."
        ),
    ),
    Exercise(
        number=3,
        slug="uint8_overflow",
        title="targets computed in uint8, which wraps at 256",
        pitfall="uint8 target overflow",
        error="TargetMismatchError",
        needs_keras=False,
        symptom=(
            "Labels were wrong the moment they were yielded ('when yielded'), by exactly 128"
            " for bright pairs, and a note says the labels are uint8 (0..255), where"
            " arithmetic wraps around."
        ),
        cause=(
            "`x[:, 0] + x[:, 1]` is computed in the pixels' dtype, uint8: 200 + 100 = 300"
            " wraps to 44, and 44 // 2 = 22. numpy keeps the dtype of the arrays it adds,"
            " and warns about overflow only for scalars, not for arrays."
        ),
        fix=(
            "Widen before adding: `y = (x[:, 0].astype(np.int64) + x[:, 1]) // 2`, or"
            " `y = x.astype(np.int64).sum(axis=1) // 2`."
        ),
        failure_hint=(
            "the labels here are meant to be rounded down, as the test's average_brightness"
            " computes them: keep the floor division //. What wraps is the sum, computed in"
            " the pixels' uint8: widen the pixels (astype(np.int64)) before adding them."
        ),
        explanation=(
            "Label arithmetic in uint8 wrapped at 256. It bites image pipelines, which keep"
            " pixels as uint8 to save memory: sums wrap past 255, differences wrap below 0"
            " (3 - 5 is 254), and the results are still valid-looking pixels, so nothing"
            " raises. Compute in a wider dtype, and convert back only at the end."
        ),
    ),
    Exercise(
        number=4,
        slug="integer_division",
        title="the mean by floor division",
        pitfall="integer division",
        error="TargetMismatchError",
        needs_keras=False,
        symptom=(
            "About a third to a half of the targets were 0.5 too low when yielded, and a"
            " note says they are integers while the rule gives fractions: floor division."
        ),
        cause=(
            "`//` is floor division: `(3 + 4) // 2` is 3, not 3.5. The inputs are integers,"
            " so the result stays an integer and every odd sum loses its half."
        ),
        fix="Divide with `/`: `y = (x[:, 0] + x[:, 1]) / 2`.",
        explanation=(
            "Floor division truncated the means of odd sums. The model still trains, on"
            " targets biased by -0.25 on average: the best it can learn is a quarter off on"
            " every sample, a loss that never falls below 1/16. Nothing looks broken, the"
            " floor is just higher. It bites"
            " targets, normalising constants and averaged counts computed on integer"
            " arrays, and code carried over from Python 2, where / on ints floored."
        ),
    ),
    Exercise(
        number=5,
        slug="in_place_scaling",
        title="scaling a batch in place rewrites the dataset",
        pitfall="in-place scaling across epochs",
        error="EpochChangedError",
        needs_keras=False,
        symptom=(
            "The second epoch held other samples than the first: none of epoch 1's 64"
            " samples came again in epoch 2. Reading an epoch changed the stored data."
        ),
        cause=(
            "`data[i : i + batch_size]` is a view of `data`, not a copy, and `x /= 255.0`"
            " divides in place: it writes the stored dataset. Every epoch divides the"
            " stored pixels by 255 once more."
        ),
        fix=(
            "Let the division make a new array: `x = data[i : i + batch_size] / 255.0`,"
            " and delete the line `x /= 255.0`."
        ),
        explanation=(
            "In-place preprocessing of a slice (a view) wrote the stored dataset, once per"
            " epoch. It bites normalisation, mean subtraction and augmentation written with"
            " -=, *=, /= or out= on slices of an array kept in memory, in a generator or a"
            " PyDataset's __getitem__. Through Keras 3's fit we measured a mean input of"
            " 0.26, 0.001 and 4e-6 in three epochs, where 0.52 is right: even the first"
            " epoch was wrong, because Keras reads two batches early to infer shapes."
        ),
    ),
    Exercise(
        number=6,
        slug="unshuffled_generator",
        title="a generator that visits the data in the same order every epoch",
        pitfall="an unshuffled generator",
        error="OrderNotShuffledError",
        needs_keras=False,
        symptom="Epoch 2 visited all 64 samples in exactly epoch 1's order.",
        cause=(
            "The generator walks `data` from index 0 in every epoch, and nothing else can"
            " reorder a generator: `fit(generator, shuffle=True)` only warns that shuffle is"
            " ignored."
        ),
        fix=(
            "Draw a new permutation every epoch from a seeded generator:"
            " `rng = np.random.default_rng(seed)` before `while True:`,"
            " `order = rng.permutation(len(data))` at the start of each epoch, and"
            " `x = np.array(data[order[i : i + batch_size]])`."
        ),
        explanation=(
            "The generator never shuffled, and nothing downstream can shuffle a generator."
            " It bites data stored sorted, by class, by date or by source: the model trains"
            " on one group at a time, and the last group of every epoch weighs most at each"
            " checkpoint. Keras 3's fit warns 'shuffle=True was passed, but will be ignored'"
            " and goes on. A PyDataset, tf.data's .shuffle() or a DataLoader's sampler can"
            " shuffle for you; a generator must do it itself."
        ),
    ),
    Exercise(
        number=7,
        slug="shared_position",
        title="several workers share one position, and some batches come twice",
        pitfall="a shared position across workers",
        error="EpochIncompleteError",
        needs_keras=False,
        symptom=(
            "The epoch had its 8 batches, but half of the samples were delivered twice and"
            " the other half never: the 'duplicated' and 'dropped' findings."
        ),
        cause=(
            "`steps` advances the shared position in one step and reads it back in another."
            " When worker A is switched out in between, worker B advances it too; then both"
            " read `position - 1`, the same batch, and the batch before it is never read."
        ),
        fix=(
            "Claim the index in one step, under a lock: `import threading`, then"
            " `self.lock = threading.Lock()` in `__init__`, and in `steps`, before the"
            " first `yield`: `with self.lock:` holding `i = self.position` and"
            " `self.position += 1`, and nothing else. The `yield`s stay outside the lock:"
            " a worker switched out while it holds the lock blocks the other one for ever."
        ),
        failure_hint=(
            "claim the batch in one step, under a threading.Lock: in steps, wrap only the"
            " position update (i = self.position; self.position += 1) in `with self.lock:`,"
            " before the first yield. Not the yields: a worker switched out while it holds"
            " the lock makes the other wait for ever (the test then stops at its timeout)."
        ),
        explanation=(
            "A read-modify-write of shared state was split over two steps: a race. It bites"
            " a generator or iterator shared by several threads, a hand-written prefetcher,"
            " any source with a cursor; Keras 2 refused a plain generator with workers > 1"
            " ('Your generator is NOT thread-safe'). The epoch has the right length, so"
            " nothing looks wrong. Real threads can switch between any two bytecodes, so"
            " only the lock makes it safe; better still, give each worker indices, as a"
            " PyDataset or a DataLoader's sampler does."
        ),
    ),
    Exercise(
        number=8,
        slug="forked_workers",
        title="forked worker processes that share one random stream",
        pitfall="forked workers sharing one RNG",
        error="SharedRngError",
        needs_keras=False,
        symptom=(
            "Every pair of the 3 workers drew the same values: 'one RNG stream, copied into both'."
        ),
        cause=(
            "A forked process starts as a copy of its parent, numpy's global RNG state"
            " included. `worker_init` does nothing, so every worker starts from the same"
            " state and draws the same jitter."
        ),
        fix=(
            "Seed numpy's global RNG from the worker id in `worker_init`:"
            " `np.random.seed(np.random.SeedSequence([0, worker_id]).generate_state(1)[0])`"
            " (`np.random.seed(1000 + worker_id)` passes too)."
        ),
        explanation=(
            "Forked workers inherited one RNG state and nothing reseeded it, so each"
            " 'random' augmentation came once per worker. It bites augmentation in"
            " DataLoader workers before PyTorch 1.9 (pytorch/pytorch#5059), Keras 3's"
            " PyDataset with use_multiprocessing (its pool passes no seed), and any"
            " multiprocessing.Pool. Seed each worker from its id (SeedSequence gives"
            " independent streams), or derive the randomness from the batch index."
        ),
    ),
    Exercise(
        number=9,
        slug="numpy_evaluation",
        title="evaluating in numpy, where (n,) minus (n, 1) is (n, n)",
        pitfall="the Keras 3 loss paths that still broadcast: numpy evaluation",
        error="BroadcastError",
        needs_keras=False,
        symptom=(
            "`strict_loss` stopped the loss call: `y_true` of shape (256,) against `y_pred`"
            " of shape (256, 1) broadcasts to (256, 256), 65536 elements where 256 were"
            " meant. Without the check, the exact model scores about 2 Var(y), not 0."
        ),
        cause=(
            "`predict` returns one column per output, (n, 1), and `y` is (n,). numpy lines"
            " up trailing axes: (n,) acts as (1, n), and (n, 1) - (1, n) is (n, n), every"
            " target against every prediction."
        ),
        fix=(
            "Give the targets the prediction's shape in `evaluate`:"
            " `y_pred = model.predict(x)`, then"
            " `return loss(np.reshape(y, y_pred.shape), y_pred)` (`y[:, None]` works too)."
        ),
        explanation=(
            "The targets (n,) met predictions (n, 1) in numpy and broadcast to (n, n). It"
            " bites every score computed by hand after predict:"
            " np.mean((y - model.predict(x)) ** 2) (keras-team/keras#14627), a hand-written"
            " R², an error analysis script. The number is plausible, so nobody doubts it: we"
            " measured 472.5 reported where the true MSE was 57.7. It is right only at batch"
            " size 1."
        ),
    ),
    Exercise(
        number=10,
        slug="lambda_shape",
        title="a Lambda that declares (1,) and returns (n,)",
        pitfall="the (n,) vs (n, 1) Lambda",
        error="PredictionShapeError",
        needs_keras=True,
        symptom=(
            "`model.predict(x)` returned shape (64,), but the model declares (None, 1): one"
            " number per sample and no column axis."
        ),
        cause=(
            "`(x[:, 0] + x[:, 1]) / 2` indexes the column axis away and leaves (n,)."
            " `output_shape=(1,)` only tells Keras what to expect; nothing checks that the"
            " function returns it."
        ),
        fix=(
            "Keep the axis in `calc_mean`:"
            " `return keras.ops.expand_dims((x[:, 0] + x[:, 1]) / 2, -1)` (the article's"
            " `K.expand_dims(res, -1)`)."
        ),
        explanation=(
            "A Lambda returned (n,) where it declared (n, 1), and nothing checked the"
            " declaration. It bites Lambda and custom layers that index or reduce an axis, a"
            " squeeze in a model's head. On Keras 2 the article's exact model scored ~830"
            " instead of 0; Keras 3's built-in losses reshape and hide it, until a Loss"
            " subclass, a GradientTape loop or numpy meets the (n,) output (exercises 9,"
            " 11 and 12)."
        ),
    ),
    Exercise(
        number=11,
        slug="loss_subclass",
        title="a Loss subclass that broadcasts (n,) against (n, 1)",
        pitfall="the Keras 3 loss paths that still broadcast: a Loss subclass",
        error="BatchDependenceError",
        needs_keras=True,
        symptom=(
            "Changing one sample's target moved the loss of all 7 other samples: each"
            " sample's loss depends on the whole batch. Trained with this loss, the mean"
            " model would stall near loss 467, predicting about 50 for every pair."
        ),
        cause=(
            "Keras 3 reshapes the targets only for its built-in losses. A Loss subclass's"
            " `call` gets `y_true` (n,) and `y_pred` (n, 1) as they are, and"
            " `y_true - y_pred` broadcasts to (n, n)."
        ),
        fix=(
            "Reshape first, as the first line of `call`:"
            " `y_true = ops.reshape(y_true, ops.shape(y_pred))`. A reshape, not a squeeze,"
            " so that a real size mismatch still raises."
        ),
        explanation=(
            "A Loss subclass received (n,) targets against (n, 1) outputs and broadcast"
            " them, so every sample's gradient leaked into the others. It bites every custom"
            " loss written as a Loss subclass (weighted, Huber-like, quantile losses); on"
            " Keras 3 this is exactly how the article's ~830 still reproduces. Wrapping"
            " call in pitfalls.strict_loss turns it into an error at the first batch."
        ),
    ),
    Exercise(
        number=12,
        slug="gradient_tape",
        title="a GradientTape loop with targets of shape (n,)",
        pitfall="the Keras 3 loss paths that still broadcast: a GradientTape loop",
        error="BroadcastError",
        needs_keras=True,
        symptom=(
            "`strict_loss` raised while the training step was traced: `y_true` of shape"
            " (256,) against `y_pred` of shape (256, 1). Without the check the loop trains"
            " without an error, and the mean model ends with weights near 0 and bias 50.4:"
            " it predicts the batch's average for every pair."
        ),
        cause=(
            "`tf.constant(y)` keeps `y`'s shape, (n,), and the model outputs (n, 1):"
            " `tf.square(y_true - y_pred)` is (n, n), and the mean over it is lowest for a"
            " model that predicts the batch's average, whatever the input."
        ),
        fix=(
            "Give the targets the model's output shape in `train`:"
            " `tf.constant(y.reshape(-1, 1))` (or `y[:, None]`). Not inside `mse`:"
            " `strict_loss` checks the shapes as the loss is called, before its body runs."
        ),
        failure_hint=(
            "give the targets the model's output shape, (n, 1), in train, where they become"
            " a tensor. A reshape inside mse comes too late: strict_loss checks the shapes"
            " as the loss is called, before its body runs."
        ),
        explanation=(
            "A hand-written loop compared (n,) targets with (n, 1) outputs and broadcast"
            " them. It bites every custom training loop (GradientTape, JAX, a PyTorch loop"
            " with MSELoss, which only warns) fed targets of shape (n,), the shape most"
            " pipelines yield: the loss falls, then plateaus, and the model learns the"
            " batch's average. Check the shapes once, at the first step: strict_loss does."
        ),
    ),
    Exercise(
        number=13,
        slug="batchnorm_training",
        title="predictions made in training mode depend on the rest of the batch",
        pitfall="BatchNormalization in training mode",
        error="BatchDependenceError",
        needs_keras=True,
        symptom="Perturbing one sample moved the predictions of all 15 other samples.",
        cause=(
            "`training=True` makes BatchNormalization normalise with the batch's own mean"
            " and variance instead of its moving averages, so every prediction depends on"
            " the whole batch."
        ),
        fix="Predict in inference mode: `model(x, training=False)` in `predict`.",
        explanation=(
            "Predictions were made in training mode, where BatchNormalization mixes the"
            " samples of a batch. It bites evaluation loops copied from the training step,"
            " Monte-Carlo dropout code that turns training on for dropout and gets batch"
            " statistics with it, and serving with batches of other sizes: the score"
            " depends on the batch size and order, and a batch of one is normalised to"
            " nothing."
        ),
    ),
)
"""Numbered from 1, numpy exercises first: the Keras ones need the ``tf`` extra."""


def by_number(number: int) -> Exercise:
    """The exercise numbered ``number`` (from 1); ValueError outside the range."""
    if not 1 <= number <= len(EXERCISES):
        raise ValueError(f"N={number} is not an exercise: choose from 1 to {len(EXERCISES)}")
    return EXERCISES[number - 1]
