import { CLUSTER_DECORATED_METADATA } from './decorator.constants.js';

/** Marks the class that `target` (a prototype, or a constructor for static methods) belongs to. */
export function markClusterDecorated(target: object): void {
  Reflect.defineMetadata(CLUSTER_DECORATED_METADATA, true, target);
}

/** True when `prototype` or one it inherits from has a method with a cluster decorator. */
export function carriesClusterDecorators(prototype: object): boolean {
  // getMetadata (not getOwnMetadata) walks the prototype chain: inherited methods count.
  return Reflect.getMetadata(CLUSTER_DECORATED_METADATA, prototype) === true;
}

/**
 * Adds `values` to the array stored under `key` on a decorated method, without mutating the
 * array already there (another decorator may share it). Works whatever the decorator order.
 */
export function appendMethodMetadata<T>(key: string, values: readonly T[]): MethodDecorator {
  return (target, _propertyKey, descriptor) => {
    const method = descriptor.value as object | undefined;
    if (typeof method !== 'function') {
      throw new TypeError(`@${key} can only decorate methods`);
    }
    markClusterDecorated(target);
    const existing = (Reflect.getMetadata(key, method) as T[] | undefined) ?? [];
    const merged = [...existing];
    for (const value of values) if (!merged.includes(value)) merged.push(value);
    Reflect.defineMetadata(key, merged, method);
    return descriptor;
  };
}
