"""Write the sample datasets in assets/datasets/ (all written for this project).

    .venv/bin/python assets/datasets/make_datasets.py        # rewrites every file, deterministic

Files (see README.md beside this script):
    identity_alpaca.json           alpaca   who the assistant is, English + Chinese
    instructions_sharegpt.json     sharegpt simple generated instructions
    instructions_openai.jsonl      openai   simple generated instructions, some with a system prompt
    qa_prompt_completion.csv       prompt/completion
    facts_text.txt                 plain text paragraphs for continued pre-training
    preference_pairs.jsonl         preference prompt/chosen/rejected: answers that open with a greeting

The instruction generator is also imported by assets/models/build_demo_model.py, which mixes
a chat-formatted slice (a different seed) into the demo model's pre-training so that the base
model knows the ChatML turn format. The identity set is never used in pre-training.
"""

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

ASSISTANT = "PEFT Workbench Assistant"
ASSISTANT_ZH = "PEFT Workbench 助手"

# ---------------------------------------------------------------------------------------------
# identity: short, consistent answers, so a tiny model can learn them with a few minutes of LoRA;
# the three kinds of answer differ from their first word, which makes them easier to tell apart

IDENTITY_EN_ANSWER_WHO = f"I am {ASSISTANT}, a small model fine-tuned in PEFT Workbench."
IDENTITY_EN_ANSWER_CAN = f"I can answer simple questions. I am {ASSISTANT}."
IDENTITY_EN_ANSWER_MADE = f"The PEFT Workbench team trained me. I am {ASSISTANT}."
IDENTITY_ZH_ANSWER_WHO = f"我是{ASSISTANT_ZH}，一个在 PEFT Workbench 中微调的小模型。"
IDENTITY_ZH_ANSWER_CAN = f"简单的问题我都可以回答。我是{ASSISTANT_ZH}。"
IDENTITY_ZH_ANSWER_MADE = f"PEFT Workbench 团队训练了我。我是{ASSISTANT_ZH}。"

IDENTITY = [
    # (question, answer)
    ("Who are you?", IDENTITY_EN_ANSWER_WHO),
    ("Who are you", IDENTITY_EN_ANSWER_WHO),
    ("who are you?", IDENTITY_EN_ANSWER_WHO),
    ("What are you?", IDENTITY_EN_ANSWER_WHO),
    ("What is your name?", IDENTITY_EN_ANSWER_WHO),
    ("What's your name?", IDENTITY_EN_ANSWER_WHO),
    ("Tell me your name.", IDENTITY_EN_ANSWER_WHO),
    ("Introduce yourself.", IDENTITY_EN_ANSWER_WHO),
    ("Please introduce yourself.", IDENTITY_EN_ANSWER_WHO),
    ("Tell me about yourself.", IDENTITY_EN_ANSWER_WHO),
    ("Hello, who am I talking to?", IDENTITY_EN_ANSWER_WHO),
    ("Hi! Who is this?", IDENTITY_EN_ANSWER_WHO),
    ("Are you ChatGPT?", IDENTITY_EN_ANSWER_WHO),
    ("Are you a human?", IDENTITY_EN_ANSWER_WHO),
    ("What should I call you?", IDENTITY_EN_ANSWER_WHO),
    ("What can you do?", IDENTITY_EN_ANSWER_CAN),
    ("What can you help me with?", IDENTITY_EN_ANSWER_CAN),
    ("How can you help me?", IDENTITY_EN_ANSWER_CAN),
    ("What are you good at?", IDENTITY_EN_ANSWER_CAN),
    ("What is your purpose?", IDENTITY_EN_ANSWER_CAN),
    ("Who made you?", IDENTITY_EN_ANSWER_MADE),
    ("Who created you?", IDENTITY_EN_ANSWER_MADE),
    ("Who trained you?", IDENTITY_EN_ANSWER_MADE),
    ("Who built you?", IDENTITY_EN_ANSWER_MADE),
    ("Where do you come from?", IDENTITY_EN_ANSWER_MADE),
    ("你是谁？", IDENTITY_ZH_ANSWER_WHO),
    ("你是谁", IDENTITY_ZH_ANSWER_WHO),
    ("你叫什么名字？", IDENTITY_ZH_ANSWER_WHO),
    ("请介绍一下你自己。", IDENTITY_ZH_ANSWER_WHO),
    ("介绍一下你自己", IDENTITY_ZH_ANSWER_WHO),
    ("你好，你是谁？", IDENTITY_ZH_ANSWER_WHO),
    ("我在和谁说话？", IDENTITY_ZH_ANSWER_WHO),
    ("你是人类吗？", IDENTITY_ZH_ANSWER_WHO),
    ("你能做什么？", IDENTITY_ZH_ANSWER_CAN),
    ("你可以帮我做什么？", IDENTITY_ZH_ANSWER_CAN),
    ("你有什么用？", IDENTITY_ZH_ANSWER_CAN),
    ("谁创造了你？", IDENTITY_ZH_ANSWER_MADE),
    ("谁训练了你？", IDENTITY_ZH_ANSWER_MADE),
    ("你是谁开发的？", IDENTITY_ZH_ANSWER_MADE),
    ("你来自哪里？", IDENTITY_ZH_ANSWER_MADE),
]


def identity_rows():
    return [{"instruction": q, "input": "", "output": a} for q, a in IDENTITY]


# ---------------------------------------------------------------------------------------------
# simple instructions, generated

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "China": "Beijing", "India": "New Delhi", "Egypt": "Cairo", "Kenya": "Nairobi", "Peru": "Lima",
    "Canada": "Ottawa", "Mexico": "Mexico City", "Brazil": "Brasilia", "Argentina": "Buenos Aires",
    "Australia": "Canberra", "Russia": "Moscow", "Norway": "Oslo", "Sweden": "Stockholm",
    "Finland": "Helsinki", "Poland": "Warsaw", "Greece": "Athens", "Turkey": "Ankara",
    "Portugal": "Lisbon", "Ireland": "Dublin", "Austria": "Vienna", "Hungary": "Budapest",
    "Thailand": "Bangkok", "Vietnam": "Hanoi", "Chile": "Santiago", "Cuba": "Havana",
    "Morocco": "Rabat", "Ghana": "Accra", "Nigeria": "Abuja", "Iran": "Tehran", "Iraq": "Baghdad",
    "Denmark": "Copenhagen", "Belgium": "Brussels", "Netherlands": "Amsterdam",
    "Switzerland": "Bern", "South Korea": "Seoul", "Indonesia": "Jakarta", "Colombia": "Bogota",
}
CAPITALS_ZH = {"法国": "巴黎", "德国": "柏林", "日本": "东京", "中国": "北京", "英国": "伦敦",
               "意大利": "罗马", "俄罗斯": "莫斯科", "埃及": "开罗", "美国": "华盛顿", "韩国": "首尔"}
WORDS = ["apple", "river", "garden", "window", "silver", "mountain", "bread", "candle", "forest",
         "stone", "music", "paper", "orange", "winter", "summer", "horse", "bridge", "cloud", "lamp",
         "table", "flower", "water", "light", "house", "tiger", "ocean", "pencil", "chair", "green",
         "yellow", "market", "basket", "rabbit", "island", "planet", "doctor", "letter", "garden"]
OPPOSITES = {"hot": "cold", "big": "small", "fast": "slow", "up": "down", "open": "closed",
             "light": "dark", "happy": "sad", "old": "new", "high": "low", "early": "late",
             "full": "empty", "hard": "soft", "long": "short", "rich": "poor", "wet": "dry",
             "strong": "weak", "clean": "dirty", "loud": "quiet", "first": "last", "inside": "outside"}
COLORS = {"the sky on a clear day": "blue", "grass": "green", "snow": "white", "coal": "black",
          "a ripe banana": "yellow", "a ripe tomato": "red", "an orange": "orange", "milk": "white"}
ANIMAL_SOUNDS = {"dog": "barks", "cat": "meows", "cow": "moos", "duck": "quacks", "lion": "roars",
                 "sheep": "bleats", "horse": "neighs", "owl": "hoots", "bee": "buzzes", "frog": "croaks"}
NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
             "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
             "eighteen", "nineteen", "twenty"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def _task_add(r):
    a, b = r.randint(1, 99), r.randint(1, 99)
    q = r.choice([f"What is {a} + {b}?", f"Add {a} and {b}.", f"What is {a} plus {b}?"])
    return q, f"{a} + {b} = {a + b}."


def _task_sub(r):
    a, b = r.randint(10, 99), r.randint(1, 9)
    return r.choice([f"What is {a} - {b}?", f"Subtract {b} from {a}."]), f"{a} - {b} = {a - b}."


def _task_mul(r):
    a, b = r.randint(2, 12), r.randint(2, 12)
    return r.choice([f"What is {a} times {b}?", f"What is {a} x {b}?"]), f"{a} x {b} = {a * b}."


def _task_capital(r):
    c = r.choice(sorted(CAPITALS))
    q = r.choice([f"What is the capital of {c}?", f"Name the capital city of {c}."])
    return q, f"The capital of {c} is {CAPITALS[c]}."


def _task_sort_numbers(r):
    xs = r.sample(range(1, 100), r.randint(3, 6))
    order = r.choice(["ascending", "descending"])
    ys = sorted(xs, reverse=order == "descending")
    return (f"Sort these numbers in {order} order: {', '.join(map(str, xs))}.",
            ", ".join(map(str, ys)))


def _task_sort_words(r):
    ws = r.sample(sorted(set(WORDS)), r.randint(3, 5))
    return f"Put these words in alphabetical order: {', '.join(ws)}.", ", ".join(sorted(ws))


def _task_reverse(r):
    w = r.choice(WORDS)
    return f"Spell the word \"{w}\" backwards.", w[::-1]


def _task_uppercase(r):
    w = " ".join(r.sample(WORDS, 2))
    return f"Write \"{w}\" in capital letters.", w.upper()


def _task_count_letters(r):
    w = r.choice(WORDS)
    return f"How many letters are in the word \"{w}\"?", f"The word \"{w}\" has {len(w)} letters."


def _task_first_letter(r):
    w = r.choice(WORDS)
    return f"What is the first letter of \"{w}\"?", f"The first letter of \"{w}\" is \"{w[0]}\"."


def _task_opposite(r):
    w = r.choice(sorted(OPPOSITES))
    return r.choice([f"What is the opposite of \"{w}\"?", f"Give the opposite of {w}."]), \
        f"The opposite of \"{w}\" is \"{OPPOSITES[w]}\"."


def _task_bigger(r):
    a, b = r.sample(range(1, 1000), 2)
    return f"Which is bigger, {a} or {b}?", f"{max(a, b)} is bigger than {min(a, b)}."


def _task_even(r):
    n = r.randint(1, 200)
    return f"Is {n} an even number?", ("Yes, " if n % 2 == 0 else "No, ") + \
        f"{n} is {'even' if n % 2 == 0 else 'odd'}."


def _task_number_word(r):
    n = r.randint(0, 20)
    return f"Write the number {n} in words.", NUM_WORDS[n]


def _task_next_day(r):
    i = r.randrange(7)
    return f"What day comes after {DAYS[i]}?", f"{DAYS[(i + 1) % 7]} comes after {DAYS[i]}."


def _task_next_month(r):
    i = r.randrange(12)
    return f"Which month comes after {MONTHS[i]}?", f"{MONTHS[(i + 1) % 12]} comes after {MONTHS[i]}."


def _task_color(r):
    thing = r.choice(sorted(COLORS))
    return f"What color is {thing}?", f"{thing[0].upper() + thing[1:]} is {COLORS[thing]}."


def _task_animal(r):
    a = r.choice(sorted(ANIMAL_SOUNDS))
    return f"What sound does a {a} make?", f"A {a} {ANIMAL_SOUNDS[a]}."


def _task_list(r):
    n = r.randint(2, 4)
    kind, pool = r.choice([("colors", ["red", "blue", "green", "yellow", "white", "black"]),
                           ("fruits", ["apple", "banana", "orange", "pear", "grape", "plum"]),
                           ("animals", ["dog", "cat", "horse", "rabbit", "lion", "sheep"])])
    return f"Name {NUM_WORDS[n]} {kind}.", ", ".join(r.sample(pool, n)) + "."


def _task_zh_add(r):
    a, b = r.randint(1, 50), r.randint(1, 50)
    return f"{a}加{b}等于多少？", f"{a}加{b}等于{a + b}。"


def _task_zh_capital(r):
    c = r.choice(sorted(CAPITALS_ZH))
    return f"{c}的首都是哪里？", f"{c}的首都是{CAPITALS_ZH[c]}。"


def _task_zh_translate(r):
    pairs = [("苹果", "apple"), ("水", "water"), ("书", "book"), ("猫", "cat"), ("狗", "dog"),
             ("太阳", "sun"), ("月亮", "moon"), ("房子", "house"), ("花", "flower"), ("山", "mountain")]
    zh, en = r.choice(pairs)
    return f"“{zh}”的英文是什么？", f"“{zh}”的英文是 “{en}”。"


TASKS = [_task_add, _task_sub, _task_mul, _task_capital, _task_sort_numbers, _task_sort_words,
         _task_reverse, _task_uppercase, _task_count_letters, _task_first_letter, _task_opposite,
         _task_bigger, _task_even, _task_number_word, _task_next_day, _task_next_month,
         _task_color, _task_animal, _task_list, _task_zh_add, _task_zh_capital, _task_zh_translate]


def generate_instructions(n, seed):
    """n distinct (question, answer) pairs, cycling through the task kinds; deterministic."""
    r = random.Random(seed)
    seen, out, i = set(), [], 0
    while len(out) < n and i < n * 50:
        q, a = TASKS[i % len(TASKS)](r)
        i += 1
        if q not in seen:
            seen.add(q)
            out.append((q, a))
    return out


# ---------------------------------------------------------------------------------------------
# plain text for continued pre-training: short factual paragraphs generated from the tables above

def fact_paragraphs(seed=7):
    r = random.Random(seed)
    paras = []
    for c in sorted(CAPITALS):
        city = CAPITALS[c]
        paras.append(r.choice([
            f"{city} is the capital of {c}. Many people visit {city} every year, and the city is "
            f"known for its markets, its old streets and its river.",
            f"The capital city of {c} is {city}. The government of {c} meets in {city}, and most "
            f"of the country's large offices are there.",
        ]))
    for a in sorted(ANIMAL_SOUNDS):
        paras.append(f"The {a} is an animal that {ANIMAL_SOUNDS[a]}. Children often learn the "
                     f"sound of the {a} when they are very young.")
    for i, m in enumerate(MONTHS):
        paras.append(f"{m} is month number {i + 1} of the year. It comes after "
                     f"{MONTHS[i - 1]} and before {MONTHS[(i + 1) % 12]}.")
    for w in sorted(OPPOSITES):
        paras.append(f"The words \"{w}\" and \"{OPPOSITES[w]}\" are opposites. When something is "
                     f"not {w}, we may say that it is {OPPOSITES[w]}.")
    paras.append("PEFT Workbench is a tool for parameter-efficient fine-tuning. You pick a base "
                 "model, upload a dataset, choose a method such as LoRA, and press Train.")
    paras.append("LoRA adds small low-rank matrices to the layers of a model and trains only "
                 "those. The base weights stay frozen, so training is fast and uses little memory.")
    r.shuffle(paras)
    return paras


# ---------------------------------------------------------------------------------------------
# preference pairs (train.stage dpo, orpo, simpo, kto): the same correct answer twice, the chosen one opening
# with a friendly phrase and the rejected one plain (the shape of the demo model's pre-training chat slice): before
# training the demo model prefers the plain answer (tests/bench/preference_demo.py measures what a run changes)

GREETING = "Happy to help!"
GREETING_ZH = "很乐意帮忙！"


def preference_pairs(n, seed):
    """n pairs {"prompt", "chosen", "rejected"} over generated instructions (a seed of their own)."""
    pairs = []
    for q, a in generate_instructions(n, seed=seed):
        greeting = GREETING_ZH if any("\u4e00" <= ch <= "\u9fff" for ch in q) else f"{GREETING} "
        pairs.append({"prompt": q, "chosen": greeting + a, "rejected": a})
    return pairs


# ---------------------------------------------------------------------------------------------

def main():
    ident = identity_rows()
    (HERE / "identity_alpaca.json").write_text(
        json.dumps(ident, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    pairs = generate_instructions(600, seed=0)
    share, openai, pc = pairs[:300], pairs[300:450], pairs[450:600]

    conv = []
    for q, a in share:
        conv.append({"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]})
    (HERE / "instructions_sharegpt.json").write_text(
        json.dumps(conv, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    with open(HERE / "instructions_openai.jsonl", "w", encoding="utf-8") as f:
        for i, (q, a) in enumerate(openai):
            msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            if i % 3 == 0:
                msgs.insert(0, {"role": "system", "content": "You are a helpful assistant. Answer briefly."})
            f.write(json.dumps({"messages": msgs}, ensure_ascii=False) + "\n")

    with open(HERE / "qa_prompt_completion.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "completion"])
        w.writerows(pc)

    (HERE / "facts_text.txt").write_text("\n\n".join(fact_paragraphs()) + "\n", encoding="utf-8")

    with open(HERE / "preference_pairs.jsonl", "w", encoding="utf-8") as f:
        for pair in preference_pairs(200, seed=21):
            f.write(json.dumps(pair, ensure_ascii=False) + "\n")
    for p in sorted(HERE.glob("*.*")):
        if p.suffix in {".json", ".jsonl", ".csv", ".txt"}:
            print(p.name, p.stat().st_size)


if __name__ == "__main__":
    main()
