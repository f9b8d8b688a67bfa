/**
 * Adds `values` to the array stored under `key` on a decorated method, without mutating the
 * array already there (another decorator may share it). Works whatever the decorator order.
 */
export function appendMethodMetadata<T>(key: string, values: readonly T[]): MethodDecorator {
  return (_target, _propertyKey, descriptor) => {
    const method = descriptor.value as object | undefined;
    if (typeof method !== 'function') {
      throw new TypeError(`@${key} can only decorate methods`);
    }
    const existing = (Reflect.getMetadata(key, method) as T[] | undefined) ?? [];
    const merged = [...existing];
    for (const value of values) if (!merged.includes(value)) merged.push(value);
    Reflect.defineMetadata(key, merged, method);
    return descriptor;
  };
}
