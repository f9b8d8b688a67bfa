import { BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';

/** Body of `PUT /flags/:name`. */
export interface SetFlagDto {
  enabled: boolean;
}

/** Flag names: letters, digits and `_ . : -`, up to 100 characters. */
export const FLAG_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

@Injectable()
export class SetFlagPipe implements PipeTransform<unknown, SetFlagDto> {
  transform(body: unknown): SetFlagDto {
    const enabled = (body as { enabled?: unknown } | null)?.enabled;
    if (typeof enabled !== 'boolean') {
      throw new BadRequestException('enabled is required (true or false), e.g. {"enabled":true}');
    }
    return { enabled };
  }
}

@Injectable()
export class FlagNamePipe implements PipeTransform<string, string> {
  transform(name: string): string {
    if (!FLAG_NAME.test(name)) {
      throw new BadRequestException(
        'flag name must be 1 to 100 letters, digits or _ . : - characters',
      );
    }
    return name;
  }
}
