export declare const testFileExtensions: string[];
export declare const importLoader: string;
