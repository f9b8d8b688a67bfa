/**
 * The last messages a node received, kept per topic so that a busy topic does not push
 * the others out. Bounded in messages per topic and in topics.
 */
export class Inbox<T extends { topic: string }> {
  private readonly topics = new Map<string, T[]>();

  constructor(
    private readonly perTopic: number,
    private readonly maxTopics: number,
  ) {}

  add(item: T): void {
    let list = this.topics.get(item.topic);
    if (list) {
      this.topics.delete(item.topic); // re-inserted below: most recently used topic last
    } else {
      list = [];
      if (this.topics.size >= this.maxTopics) {
        const oldest = this.topics.keys().next().value;
        if (oldest !== undefined) this.topics.delete(oldest);
      }
    }
    list.push(item);
    if (list.length > this.perTopic) list.splice(0, list.length - this.perTopic);
    this.topics.set(item.topic, list);
  }

  /** The last `limit` messages of one topic, or of all topics, oldest first. */
  list(topic: string | undefined, limit: number, order: (a: T, b: T) => number): T[] {
    const items =
      topic === undefined
        ? [...this.topics.values()].flat().sort(order)
        : [...(this.topics.get(topic) ?? [])];
    return items.slice(-limit);
  }
}
