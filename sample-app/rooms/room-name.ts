/** Longest room name the sample app accepts, in characters. */
export const MAX_ROOM_LENGTH = 200;

/** Why `room` is not an acceptable room name, or null when it is. */
export function roomProblem(room: unknown): string | null {
  if (typeof room !== 'string' || room.trim() === '') return 'room must be a non-empty string';
  if (room.length > MAX_ROOM_LENGTH)
    return `room must be at most ${MAX_ROOM_LENGTH} characters (got ${room.length})`;
  return null;
}
